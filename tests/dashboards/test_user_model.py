"""The dashboard with a user's own model: a report made from a factory rebuilds the model for
live what-ifs, and the Start page's "Run an audit" tab runs a config file."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import nnx
from streamlit.testing.v1 import AppTest

APP = os.path.join(os.path.dirname(__file__), "..", "..", "dashboards", "app.py")

FACTORY = '''
import jax
from flax import nnx


class Net(nnx.Module):
    def __init__(self, d, rngs):
        self.a = nnx.Linear(d, 8, rngs=rngs)
        self.b = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.b(jax.nn.relu(self.a(x)))


def make(input_shape, rngs):
    return Net(input_shape[0], rngs)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's folder: their model code, Orbax weights and an audit config naming them."""
    import sys

    folder = tmp_path_factory.mktemp("byom")
    (folder / "code").mkdir()
    (folder / "code" / "dash_user_net.py").write_text(FACTORY)
    sys.path.insert(0, str(folder / "code"))
    import dash_user_net

    net = dash_user_net.make((27,), nnx.Rngs(3))
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(folder / "weights"), nnx.state(net, nnx.Param))
    checkpointer.wait_until_finished()  # Orbax saves asynchronously
    (folder / "audit.yaml").write_text(textwrap.dedent("""
        name: byom-dashboard
        data: {dataset: credit, options: {n: 600, include_sensitive: true}}
        model: {factory: "dash_user_net:make", python_path: [code], checkpoint: weights, output: sigmoid}
        analyzers:
          imbalance: {}
          robustness: {n: 30, eps: [0.1], attacks: [fgsm], min_perturbation_n: 0, bootstrap: 0, impute_k: []}
    """))
    return folder


def test_run_tab_runs_a_config_file_and_live_what_ifs_rebuild_the_factory_model(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the report goes to reports/out/ under here
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.radio(key="run_source").set_value("A config file (YAML)").run()
    at.text_input(key="run_config_path").set_value(str(project / "audit.yaml")).run()
    at.button(key="run_config_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    path = tmp_path / "reports" / "out" / "byom-dashboard" / "report.json"
    assert path.is_file()
    assert "data:image/png;base64," in (path.parent / "report.html").read_text()  # figures drawn as sections ran

    from audit.pipeline import AuditReport
    from dashboards._state import context

    report = AuditReport.load(str(path))
    assert report.metadata["model"]["architecture"]["factory"] == "dash_user_net:make"
    ctx = context(report, str(path))
    assert ctx.live and not ctx.warnings, ctx.error
    assert ctx.model.fingerprint() == report.metadata["model"]["fingerprint"]
    page = AppTest.from_file(APP, default_timeout=300)
    page.session_state["report_path"] = str(path)
    page.run()
    page.switch_page("views/robustness.py").run()
    assert not page.exception
    assert "Live what-ifs are off" not in "\n".join(i.value for i in page.info)


def test_uploaded_configs_may_not_name_code():
    from audit.errors import AuditInputError
    from dashboards._run import config_from_upload

    with pytest.raises(AuditInputError, match="may not run code"):
        config_from_upload("c.yaml", b"model: {factory: 'os:system', checkpoint: x}\ndata: {dataset: credit}\n")
    with pytest.raises(AuditInputError, match="not a valid YAML"):
        config_from_upload("c.yaml", b"a: [")
    config = config_from_upload("c.yaml", b"data: {dataset: credit}\nmodel: {train: {epochs: 1}}\n")
    assert config.data == {"dataset": "credit"} and np.isscalar(config.seed)
