"""Fairness figures: pure Figure objects drawn from results alone (also from a JSON round trip)."""

from __future__ import annotations

import json

from matplotlib.figure import Figure

from audit.fairness import FairnessReport, evaluate, mitigate
from audit.render.figures import fairness as figs
from audit.results import to_jsonable


def test_fairness_figures_draw_from_the_result(credit_model, credit_small):
    report = evaluate(credit_model, credit_small, attributes=["sex", ("sex", "age")], n_bootstrap=50)
    report = FairnessReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))  # figures need no model
    chart = figs.disparity_chart(report, attribute="sex")
    assert isinstance(chart, Figure) and len(chart.axes[0].get_yticklabels()) == 5
    heat = figs.group_heatmap(report, attribute="sex&age")
    assert len(heat.axes[0].get_yticklabels()) == len(report.attribute("sex&age").groups)
    assert isinstance(figs.group_bars(report), Figure)
    assert "sex" in figs.proxy_chart(report, attribute="sex").axes[0].get_title()
    captions = [c for c, f in figs.report_figures(report)]
    assert len(captions) == 3 and all(isinstance(f, Figure) for _, f in figs.report_figures(report))
    # the group metric table goes into the HTML report as a table (text cells), not a picture
    tables = figs.group_tables(report)
    assert [t["caption"].split(" (")[0] for t in tables] == ["Group metrics by sex", "Group metrics by sex&age"]
    a = report.attribute("sex")
    table = tables[0]
    assert len(table["rows"]) == len(a.groups) and len(table["columns"]) == len(figs._TABLE)
    for k, (label, cells) in enumerate(table["rows"]):
        assert label.startswith(f"{a.table().groups[k]} (n={int(a.sizes[k])}")
        for m, (text, marked) in zip(figs._TABLE, cells):
            v = float(a.table().values[m][k])
            assert text == ("n/a" if v != v else f"{v:.3f}") and marked == (a.table().groups[k] in a.table().small_groups(m))


def test_mitigation_figure(credit_model, credit_small):
    result = mitigate(credit_model, credit_small, attribute="sex", methods=("thresholds",), n_bootstrap=20)
    fig = figs.mitigation_bars(result)
    assert len(fig.axes) == 2 and len(fig.axes[0].patches) == 2
    assert len(figs.mitigation_figures(result)) == 1
