"""The flax-audit Streamlit dashboard (run `audit dashboard [report.json]`)."""
