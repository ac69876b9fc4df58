"""Missing data: who is missing values, whether missingness predicts the label, and what values
missing at prediction time cost the model, per group. Reads the `missing` section only."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from audit.render.figures import missing as mfig
from dashboards import _state, _widgets

report = _state.require_report()
st.title("Who is missing, and what does it cost?")
result = _widgets.section_result(report, "missing")
if result is None:
    st.stop()

st.caption(f"Profile over all rows, before imputation; robustness on the {result.split} rows with values blanked "
           f"completely at random. Imputer: {result.imputer}.")
_widgets.findings_list(result.findings)

if result.columns:
    st.subheader("Missing values per column")
    st.dataframe(pd.DataFrame([{"column": c.column, "missing rows": c.n_missing, "rate": c.rate,
                                f"rate among {result.minority_class!r}": c.minority.rate,
                                "rate among the rest": c.rest.rate, "mask AUC": c.mask_auc,
                                "informative": c.informative} for c in result.columns]),
                 hide_index=True, width="stretch")
if result.attributes:
    st.subheader("Per group")
    st.pyplot(mfig.group_rates(result))
if len(result.curve) > 1:
    st.subheader("Values missing at prediction time")
    st.pyplot(mfig.robustness_curves(result))
    st.dataframe(pd.DataFrame([{"missing share": p.rate, "accuracy": p.accuracy.rate,
                                "accuracy interval": f"[{p.accuracy.ci_low:.3f}, {p.accuracy.ci_high:.3f}]",
                                "minority recall": p.minority_recall.rate} for p in result.curve]),
                 hide_index=True, width="stretch")
