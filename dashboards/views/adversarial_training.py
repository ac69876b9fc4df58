"""Adversarial training: the same rows attacked before and after retraining with the recipe,
clean and worst-case robust accuracy per eps (with bootstrap bands), per sensitive group at a
chosen eps, and the retrained model's training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboards import _charts, _state, _widgets

report = _state.require_report()
st.title("Adversarial training: before and after")
result = _widgets.section_result(report, "adversarial_training")
if result is None:
    st.stop()

recipe = result.recipe
before, after = result.before, result.after
st.markdown(f"Retrained with **{str(recipe.get('method', '')).upper()}** adversarial training at eps "
            f"**{float(recipe.get('eps', float('nan'))):g}** ({recipe.get('norm', after.norm)}); both models attacked on "
            f"the same {after.n} test rows and eps grid.")
_widgets.findings_list(_widgets.section_findings(report, "adversarial_training"))

m = result.metrics()
c = st.columns(3)
c[0].metric("Clean accuracy before", f"{m['clean_accuracy:before']:.3f}")
c[1].metric("Clean accuracy after", f"{m['clean_accuracy:after']:.3f}",
            delta=f"{-m['clean_accuracy_drop']:+.3f}")
trained_eps = float(recipe.get("eps", after.eps[-1]))
grid = [float(e) for e in after.eps]
at = st.select_slider("eps (the audit's grid)", options=grid,
                      value=min(grid, key=lambda e: abs(e - trained_eps)), key="advt_eps")
j = grid.index(at)
c[2].metric(f"Robust accuracy after, eps {at:g}", f"{after.curve('ensemble').accuracy[j]:.3f}",
            delta=f"{after.curve('ensemble').accuracy[j] - before.curve('ensemble').accuracy[j]:+.3f} vs before")

curves = pd.concat([pd.DataFrame({"eps": rep.eps.astype(np.float64), "model": name,
                                  "robust accuracy": rep.curve("ensemble").accuracy,
                                  "low": rep.curve("ensemble").low, "high": rep.curve("ensemble").high})
                    for name, rep in (("before", before), ("after", after))], ignore_index=True)
left, right = st.columns(2)
with left:
    st.altair_chart(_charts.lines(curves, x="eps", y="robust accuracy", color="model", band=("low", "high"),
                                  x_title=f"eps ({after.norm})", y_title="worst-case robust accuracy",
                                  title="Worst case over attacks (bootstrap band)"), width="stretch")
groups = after.curves_of("group")
with right:
    if groups:
        old = {(g.attribute, g.name): g for g in before.curves_of("group")}
        per = []
        for g in groups:
            for name, curve in (("before", old.get((g.attribute, g.name))), ("after", g)):
                if curve is not None:
                    per.append({"group": f"{g.attribute} = {g.name}", "model": name, "rows": int(curve.n),
                                "robust accuracy": float(curve.accuracy[j]), "low": float(curve.low[j]),
                                "high": float(curve.high[j])})
        frame = pd.DataFrame(per)
        st.altair_chart(_charts.bars(frame, category="group", value="robust accuracy", color="model", low="low",
                                     high="high", value_title=f"robust accuracy at eps {at:g}",
                                     title="Per sensitive group"), width="stretch")
    else:
        st.caption("The data have no sensitive attributes: no per-group curves.")
st.markdown("**The report's table**: clean and worst-case robust accuracy per eps")
st.dataframe(pd.DataFrame(result.table()), hide_index=True, width="stretch", key="advt_table")
if groups:
    st.dataframe(frame, hide_index=True, width="stretch", key="advt_groups")

epochs = list((result.history or {}).get("epochs") or [])
if epochs:
    st.subheader("Training curves of the retrained model")
    history = pd.DataFrame(epochs)
    x = "epoch" if "epoch" in history else None
    if x is None:
        history["epoch"] = np.arange(1, len(history) + 1)
    numeric = [c for c in history.columns if c != "epoch" and pd.api.types.is_numeric_dtype(history[c])]
    long = history.melt(id_vars="epoch", value_vars=numeric, var_name="series", value_name="value")
    st.altair_chart(_charts.lines(long, x="epoch", y="value", color="series", y_domain=None,
                                  title=f"Best epoch {result.history.get('best_epoch')}"), width="stretch")
