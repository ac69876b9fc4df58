"""Missing data: who is missing values, whether missingness predicts the label, and what values
missing at prediction time cost the model, per group, per injection scenario and per imputation
strategy (and, when the retraining comparison ran, which strategy is safest end to end). Reads
the `missing` and `missing_strategies` sections only."""

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
           f"(at random, from the most important columns, or from one group's rows). Imputer: {result.imputer}.")
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
    labels = [f"{c.description} — {'data imputer' if c.strategy == 'data' else c.strategy}" for c in result.curves]
    chosen = result.curves[labels.index(st.selectbox("Scenario and imputer", labels, key="missing_curve"))]
    st.pyplot(mfig.robustness_curves(result, chosen))
    rows = []
    for p in chosen.points:
        row = {"missing share": p.rate, "accuracy": p.accuracy.rate,
               "accuracy interval": f"[{p.accuracy.ci_low:.3f}, {p.accuracy.ci_high:.3f}]",
               "minority recall": p.minority_recall.rate}
        for g in p.gaps:
            row[f"DP gap ({g.attribute})"] = g.demographic_parity
            row[f"EO gap ({g.attribute})"] = g.equalized_odds
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if sum(c.strategy == "data" for c in result.curves) > 1:
        st.subheader("Scenarios side by side")
        st.pyplot(mfig.scenario_curves(result))
    if result.curves[0].points[0].gaps:
        st.subheader("Fairness gaps as values go missing")
        st.pyplot(mfig.fairness_curves(result))
    if sum(c.scenario == "mcar" for c in result.curves) > 1:
        st.subheader("Imputation strategies")
        st.pyplot(mfig.strategy_curves(result))

comparison = report.sections.get("missing_strategies")
if comparison is not None and comparison.result is not None:
    st.subheader("The safest strategy, retrained end to end")
    _widgets.findings_list(comparison.result.findings)
    st.pyplot(mfig.strategy_grid(comparison.result))
    st.dataframe(pd.DataFrame([{"trained with": c.train, "imputed with": c.evaluate, "accuracy": c.accuracy.rate,
                                "worst group": c.worst_group.label, "worst-group accuracy": c.worst_group.rate}
                               for c in comparison.result.cells]), hide_index=True, width="stretch")
