"""Recourse in the HTML report: the burden figure, worked examples with changed cells marked, escaping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import jax.numpy as jnp
from matplotlib.figure import Figure

from audit.data import from_pandas
from audit.models import Model
from audit.pipeline import AuditConfig, AuditReport, run
from audit.recourse import evaluate
from audit.render.figures import recourse as rfig


@pytest.fixture(scope="module")
def tricky():
    """A level name with HTML in it must reach the report escaped."""
    rng = np.random.default_rng(0)
    n = 1200
    frame = pd.DataFrame({"x": rng.normal(size=n), "kind": rng.choice(["<b>bold</b>", "plain"], size=n),
                          "group": rng.choice(["g1", "g2"], size=n)})
    frame["y"] = np.where(frame["x"] > 0.8, "deny", "grant")
    data = from_pandas(frame, target="y", sensitive=["group"], categorical=["kind"], class_names=("grant", "deny"))
    model = Model.from_function(lambda p, x: jnp.stack([jnp.zeros(len(x)), x @ p - 0.8 * 1.0], axis=1),
                                jnp.asarray([data.encoding.columns[0].std, 0.0, 0.0], jnp.float32),
                                input_shape=(3,), class_names=("grant", "deny"))
    return data, model


def test_figures_and_tables(tricky):
    data, model = tricky
    rep = evaluate(model, data, n_bootstrap=50, seed=0)
    figs = rfig.report_figures(rep)
    assert len(figs) == 2 and all(isinstance(f, Figure) for _, f in figs)
    split, *tables = rfig.example_tables(rep, n=4)
    # the validity split first: requested = valid + invalid + infeasible, overall and per group
    assert split["columns"] == ["requested", "valid", "invalid", "infeasible"]
    counts = {label: [int(v) for v, _ in cells] for label, cells in split["rows"]}
    assert counts["all denied rows"] == [len(rep.rows), int(rep.feasible.sum()), 0, int((~rep.feasible).sum())]
    for label, (req, valid, invalid, infeasible) in counts.items():
        assert req == valid + invalid + infeasible, label
    g1 = rep.attribute("group").group("g1")
    assert counts["group = g1"] == [g1.n_denied, g1.n_feasible, 0, g1.n_denied - g1.n_feasible]
    assert 1 <= len(tables) <= 4
    for t in tables:
        (_, before), (_, after) = t["rows"]
        assert [m for _, m in before] == [False] * len(t["columns"])
        assert [m for _, m in after] == [b != a for (b, _), (a, _) in zip(before, after)]
        assert any(m for _, m in after)


def test_report_section_escapes_and_marks_changes(tricky, tmp_path):
    data, model = tricky
    config = AuditConfig.from_dict({"name": "r", "analyzers": {"recourse": {"n_bootstrap": 50}}})
    report = run(model, data, config, progress=False)
    report.to_json(tmp_path / "r.json")
    back = AuditReport.load(tmp_path / "r.json")
    assert back.sections["recourse"].result == report.sections["recourse"].result
    html = open(report.to_html(tmp_path / "r.html")).read()
    assert 'id="section-recourse"' in html and 'class="changed"' in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
