"""Interactive charts (Altair, which Streamlit ships) for the numbers a reader hovers over.

Each function maps a tidy `pandas.DataFrame` to an Altair chart with tooltips; none computes
a metric. Matplotlib figures from `audit.render.figures` stay where the report uses them.
"""

from __future__ import annotations

import altair as alt
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
    rows = frame[category].nunique() * (frame[color].nunique() if color else 1)
    return _style(alt.layer(*layers).properties(title=title, height=height or max(120, 26 * rows)))
