"""Interactive charts (Altair, which Streamlit ships) for the numbers a reader hovers over.

Each function maps a tidy `pandas.DataFrame` to an Altair chart with tooltips; none computes
a metric. Matplotlib figures from `audit.render.figures` stay where the report uses them.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

FONT = 13  # axis and legend text no smaller than the page's captions


def _style(chart: alt.Chart) -> alt.Chart:
    return (chart.configure_axis(labelFontSize=FONT - 1, titleFontSize=FONT)
            .configure_legend(labelFontSize=FONT - 1, titleFontSize=FONT, orient="bottom")
            .configure_title(fontSize=FONT + 1))


def lines(frame: pd.DataFrame, *, x: str, y: str, color: str, dash: str | None = None, band: tuple[str, str] | None = None,
          title: str = "", y_title: str | None = None, x_title: str | None = None, y_domain=(0.0, 1.0),
          height: int = 320) -> alt.Chart:
    """One line per `color` value of `y` against `x`, points with tooltips; `dash` names a column
    whose values set the stroke dash (e.g. certified vs empirical); `band` (low, high) columns
    draw a shaded interval."""
    base = alt.Chart(frame)
    enc = dict(x=alt.X(f"{x}:Q", title=x_title or x),
               y=alt.Y(f"{y}:Q", title=y_title or y, scale=alt.Scale(domain=list(y_domain)) if y_domain else
                       alt.Undefined),
               color=alt.Color(f"{color}:N", title=None))
    if dash:
        enc["strokeDash"] = alt.StrokeDash(f"{dash}:N", title=None)
    tooltip = [alt.Tooltip(f"{c}:{'Q' if pd.api.types.is_numeric_dtype(frame[c]) else 'N'}",
                           format=".3f" if pd.api.types.is_float_dtype(frame[c]) else "") for c in frame.columns]
    layers = [base.mark_line(strokeWidth=2).encode(**enc),
              base.mark_point(filled=True, size=60).encode(**enc, tooltip=tooltip)]
    if band:
        layers.insert(0, base.mark_area(opacity=0.15).encode(x=enc["x"], y=f"{band[0]}:Q", y2=f"{band[1]}:Q",
                                                              color=enc["color"]))
    return _style(alt.layer(*layers).properties(title=title, height=height))


def bars(frame: pd.DataFrame, *, category: str, value: str, color: str | None = None, low: str | None = None,
         high: str | None = None, title: str = "", value_title: str | None = None, domain=(0.0, 1.0),
         height: int | None = None) -> alt.Chart:
    """Horizontal bars of `value` per `category` (grouped by `color`), with an interval whisker
    (`low`, `high`) and tooltips."""
    y = alt.Y(f"{category}:N", title=None, sort=None)
    x = alt.X(f"{value}:Q", title=value_title or value,
              scale=alt.Scale(domain=list(domain)) if domain else alt.Undefined)
    enc = dict(y=y, x=x)
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=None)
        enc["yOffset"] = alt.YOffset(f"{color}:N")
    tooltip = [alt.Tooltip(f"{c}:{'Q' if pd.api.types.is_numeric_dtype(frame[c]) else 'N'}",
                           format=".3f" if pd.api.types.is_float_dtype(frame[c]) else "") for c in frame.columns]
    base = alt.Chart(frame)
    layers = [base.mark_bar().encode(**enc, tooltip=tooltip)]
    if low and high:
        whisker = dict(y=y, x=alt.X(f"{low}:Q"), x2=f"{high}:Q")
        if color:
            whisker["yOffset"] = alt.YOffset(f"{color}:N")
        layers.append(base.mark_rule(color="black").encode(**whisker))
    step = 20  # one bar (of each colour) per band step
    return _style(alt.layer(*layers).properties(title=title, height=height or alt.Step(step)))


def threshold_tradeoff(sweep, threshold: float, *, attribute: str) -> alt.Chart:
    """Accuracy and each difference-type disparity against the decision threshold (hover for the
    values), the chosen threshold as a rule."""
    frame = pd.DataFrame(sweep).melt(id_vars="threshold", var_name="measure", value_name="value")
    frame["measure"] = frame["measure"].str.replace("_", " ")
    chart = alt.Chart(frame)
    enc = dict(x=alt.X("threshold:Q", title="decision threshold on P(positive class)"),
               y=alt.Y("value:Q", title="value", scale=alt.Scale(domain=[0, 1])),
               color=alt.Color("measure:N", title=None))
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(color="#c0392b", strokeDash=[4, 3]).encode(
        x="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", format=".2f")])
    return _style(alt.layer(chart.mark_line(strokeWidth=2).encode(**enc),
                            chart.mark_point(filled=True, size=40).encode(
                                **enc, tooltip=["measure", alt.Tooltip("threshold:Q", format=".2f"),
                                                alt.Tooltip("value:Q", format=".3f")]), rule)
                  .properties(title=f"Accuracy and gaps by {attribute} as the threshold moves", height=320))


def disparities(rows: list[dict], *, attribute: str, threshold: float) -> alt.Chart:
    """Gaps of one attribute (`dashboards._cohort.gap_rows`) with their intervals."""
    frame = pd.DataFrame([{**r, "disparity": r["disparity"].replace("_", " ")} for r in rows
                          if r["value"] is not None])
    return bars(frame, category="disparity", value="value", low="low", high="high", domain=None,
                value_title="gap between groups (95% Newcombe interval)",
                title=f"Gaps by {attribute} at threshold {threshold:.2f}")


def pr_roc(thresholds, threshold: float, precision: float, recall: float, fpr: float) -> alt.HConcatChart:
    """The report's precision-recall and ROC curves (hover for thresholds) with the operating
    point at `threshold`."""
    point = pd.DataFrame({"recall": [recall], "precision": [precision], "fpr": [fpr], "threshold": [threshold]})
    tip = [alt.Tooltip(c, format=".3f") for c in ("recall", "precision", "fpr", "threshold") if c in point]

    def curve(x, y, frame, title, x_title, y_title):
        line = alt.Chart(frame).mark_line(color="#555").encode(
            x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(domain=[0, 1])),
            y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(domain=[0, 1])),
            tooltip=[alt.Tooltip(f"{c}:Q", format=".3f") for c in frame.columns])
        dot = alt.Chart(point).mark_point(color="#c0392b", size=140, filled=True).encode(x=f"{x}:Q", y=f"{y}:Q",
                                                                                        tooltip=tip)
        return alt.layer(line, dot).properties(title=title, height=280, width=300)

    pr = pd.DataFrame({"recall": thresholds.recall, "precision": thresholds.precision,
                       "threshold": np.append(thresholds.pr_thresholds, np.nan)[:len(thresholds.recall)]})
    roc = pd.DataFrame({"fpr": thresholds.fpr, "tpr": thresholds.tpr,
                        "threshold": np.append(thresholds.roc_thresholds, np.nan)[:len(thresholds.fpr)]})
    return _style(alt.hconcat(curve("recall", "precision", pr, f"Precision-recall ({thresholds.positive_class!r})",
                                    "recall", "precision"),
                              curve("fpr", "tpr", roc, "ROC", "false positive rate", "true positive rate")))


def probabilities(class_names, before: np.ndarray, after: np.ndarray, *, label: int) -> alt.Chart:
    """Class probabilities before and after an attack (hover for values), the true class starred."""
    names = [f"{c}*" if i == label else str(c) for i, c in enumerate(class_names)]
    frame = pd.DataFrame({"class": names * 2, "when": ["before"] * len(names) + ["after attack"] * len(names),
                          "probability": np.concatenate([before, after]).astype(np.float64)})
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("class:N", title="class (* true class)", sort=None), xOffset=alt.XOffset("when:N", sort=["before"]),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("when:N", title=None, sort=["before"], scale=alt.Scale(range=["#2c3e50", "#c0392b"])),
        tooltip=["class", "when", alt.Tooltip("probability:Q", format=".3f")])
    return _style(chart.properties(title="Class probabilities", height=280))


def perturbation(delta: np.ndarray, original: np.ndarray, feature_names, *, max_features: int = 10) -> alt.Chart:
    """The inputs an attack changed, largest change first (model input units; hover for values)."""
    order = [j for j in np.argsort(-np.abs(delta), kind="stable")[:max_features] if delta[j] != 0]
    frame = pd.DataFrame({"input": [str(feature_names[j]) if j < len(feature_names) else f"input {j}" for j in order],
                          "original": original[order].astype(np.float64), "change": delta[order].astype(np.float64)})
    frame["direction"] = np.where(frame["change"] > 0, "up", "down")
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("input:N", sort=None, title=None), x=alt.X("change:Q", title="change (model input units)"),
        color=alt.Color("direction:N", scale=alt.Scale(domain=["up", "down"], range=["#ff0051", "#008bfb"]),
                        legend=None),
        tooltip=["input", alt.Tooltip("original:Q", format=".3f"), alt.Tooltip("change:Q", format=".4f")])
    return _style(chart.properties(title="What the attack changed", height=max(120, 26 * max(len(frame), 1))))


def image(values: np.ndarray, *, signed: bool = False) -> np.ndarray:
    """An image array for `st.image`: [0, 1] greys, or a signed map as red (up) / blue (down)."""
    img = np.asarray(values, np.float64)
    img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
    if not signed:
        return np.clip(img, 0.0, 1.0)
    span = float(np.abs(img).max()) or 1.0
    t = np.clip(img / span, -1.0, 1.0)
    rgb = np.ones(img.shape[:2] + (3,))
    rgb[..., 1] -= np.abs(t)
    rgb[..., 0] -= np.clip(-t, 0, 1)
    rgb[..., 2] -= np.clip(t, 0, 1)
    return rgb


def confusion(matrix: np.ndarray, class_names, *, normalize: bool = True) -> alt.Chart:
    """Confusion matrix as a heat map with counts and row shares on hover (rows: true class)."""
    matrix = np.asarray(matrix, np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    names = [str(c) for c in class_names]
    frame = pd.DataFrame([{"true": names[i], "predicted": names[j], "rows": int(matrix[i, j]),
                           "share of the true class": float(share[i, j])}
                          for i in range(len(names)) for j in range(len(names))])
    shown = "share of the true class" if normalize else "rows"
    base = alt.Chart(frame).encode(x=alt.X("predicted:N", sort=names, title="predicted class"),
                                   y=alt.Y("true:N", sort=names, title="true class"))
    cells = base.mark_rect().encode(color=alt.Color(f"{shown}:Q", scale=alt.Scale(scheme="blues"), legend=None),
                                    tooltip=["true", "predicted", "rows",
                                             alt.Tooltip("share of the true class:Q", format=".3f")])
    text = base.mark_text(fontSize=FONT - 1).encode(
        text=alt.Text(f"{shown}:Q", format=".2f" if normalize else "d"),
        color=alt.condition(f"datum['{shown}'] > {0.5 if normalize else float(matrix.max()) / 2}",
                            alt.value("white"), alt.value("black")))
    side = max(220, 34 * len(names))
    return _style(alt.layer(cells, text).properties(title="Confusion matrix" + (" (row shares)" if normalize else ""),
                                                    width=side, height=side))
