"""Issue #21: the model card (Mitchell et al., 2019) from the config's `card:` section, in the HTML
report and as Markdown; the provenance of the audited code (git commit)."""

import html as htmllib
import os
import re
import subprocess

import numpy as np
import pytest

from audit import AuditConfig, AuditInputError, run
from audit.data import Dataset, stratified_split
from audit.models import Model
from audit.pipeline._provenance import git_commit
from audit.render.card import card_markdown
from audit.render.html import render_report

CARD = {
    "intended_use": "Rank loan applications <for review> by a person.",
    "out_of_scope": ["Deciding a loan without a person", "Applicants outside the country | region"],
    "limitations": "Trained on synthetic rows only.",
    "ethical_considerations": ["Sex and age are model inputs."],
    "developers": "The audit team",
}
HISTORY = {"epochs": [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.65, "val_accuracy": 0.61},
                      {"epoch": 2, "train_loss": 0.5, "val_loss": 0.52, "val_accuracy": 0.74},
                      {"epoch": 3, "train_loss": 0.4, "val_loss": 0.55, "val_accuracy": 0.73}],
           "best_epoch": 2, "stopped_early": True, "seconds": 1.5,
           "settings": {"epochs": 10, "learning_rate": 0.003}}


def _model_and_data(training=None):
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    X = rng.normal(size=(240, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=240) > 0).astype(int)
    data = Dataset(X=X, y=y, feature_names=("a", "b", "c"), class_names=("no", "yes"),
                   sensitive={"sex": np.where(X[:, 1] > 0, "f", "m")}, splits=stratified_split(y), name="toy")
    model = Model.from_function(lambda p, x: jnp.stack([-x[:, 0] * p, x[:, 0] * p], -1), jnp.float32(2.0),
                                input_shape=(3,), class_names=("no", "yes"))
    if training is not None:
        model = model.replace(metadata={**model.metadata, "training": training})
    return model, data


@pytest.fixture(scope="module")
def carded(registry):
    model, data = _model_and_data(HISTORY)
    config = AuditConfig(name="carded", analyzers={"accuracy": {}}, registry=registry, card=CARD,
                         policy=[{"metric": "accuracy.accuracy", "min": 0.99}])
    return run(model, data, config, progress=False)


def test_card_renders_from_config_escaped_with_training_curves_and_data(carded):
    html = render_report(carded)
    card = html[html.index('<section id="card"'):html.index("</section>", html.index('<section id="card"'))]
    for text in ["Rank loan applications <for review> by a person.", "Deciding a loan without a person",
                 "Trained on synthetic rows only.", "Sex and age are model inputs.", "The audit team"]:
        assert htmllib.escape(text) in card
    assert "<for review>" not in html  # user text is escaped
    assert 'alt="Training curves"' in card and "the weights of epoch 2 were kept" in card
    sizes = carded.metadata["data"]["groups"]["sex"]
    test_rows = carded.metadata["data"]["splits"]["test"]
    assert sum(n for _, n, _ in sizes) == 240 and sum(t for _, _, t in sizes) == test_rows
    assert all(f"{g}: {n} ({t})" in card for g, n, t in sizes)
    # the quantitative analysis is the policy, linked to the findings table, not a second copy of it
    assert re.search(r'<a href="#finding-1">F1</a></td><td>Accuracy<span class="key">accuracy.accuracy</span>', card)
    assert "Not provided: add card.factors" in card  # headings the config leaves empty say how to fill them


def test_card_without_training_history_says_not_recorded(registry):
    model, data = _model_and_data()
    report = run(model, data, AuditConfig(name="bare", analyzers={"accuracy": {}}, registry=registry),
                 progress=False)
    assert "Training history: not recorded" in render_report(report)
    assert "Training history: not recorded" in card_markdown(report)
    assert "Not provided: add card.intended_use" in card_markdown(report)


def test_markdown_card_has_the_config_fields_training_data_and_findings(carded):
    md = card_markdown(carded)
    assert md.startswith("# Model card: carded\n")
    assert "Rank loan applications &lt;for review&gt; by a person." in md  # HTML in Markdown is escaped
    assert "- Deciding a loan without a person" in md and "- Applicants outside the country | region" in md
    assert "**Limitations:** Trained on synthetic rows only." in md
    assert "**Developed by:** The audit team" in md
    headings = re.findall(r"^## (.+)$", md, re.M)
    assert headings == ["Model details", "Intended use", "Factors", "Metrics", "Training data", "Evaluation data",
                        "Quantitative analyses", "Ethical considerations", "Caveats and recommendations"]
    assert "| 2 | 0.5 | 0.52 | 0.74 |" in md  # the training history, epoch by epoch
    for f in carded.findings:
        assert htmllib.escape(f.message, quote=False) in md
    rule = next(f for f in carded.findings if f.id == "policy:accuracy.accuracy")
    assert f"| Accuracy (accuracy.accuracy) | {rule.value:.4g} | &gt;= 0.99 | {rule.status} |" in md


def test_card_config_is_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncard:\n  intended_use: scoring\n  intendd_users: people\n")
    with pytest.raises(AuditInputError, match=r"unknown key 'card.intendd_users' \(.*line 4\).*intended_users"):
        AuditConfig.from_yaml(path)
    with pytest.raises(AuditInputError, match="card.limitations.*text or a list of text"):
        AuditConfig.from_dict({"card": {"limitations": 3}})
    with pytest.raises(AuditInputError, match="card.limitations"):
        AuditConfig.from_dict({"card": {"limitations": ["fine", ""]}})
    with pytest.raises(AuditInputError, match="'card' must be a mapping"):
        AuditConfig.from_dict({"card": "free text"})
    config = AuditConfig.from_dict({"card": {"limitations": ["a", "b"], "contact": "me"}})
    assert AuditConfig.from_dict(config.to_dict()) == config and config.to_dict()["card"]["contact"] == "me"
    assert "card" not in AuditConfig().to_dict()


def _git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def test_git_commit_of_a_checkout_with_dirty_flag(tmp_path):
    assert git_commit(str(tmp_path)) is None  # not a checkout
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "sub" / "model.py").write_text("x = 1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    found = git_commit(str(repo / "sub"))
    assert found == {"commit": head, "dirty": False, "root": os.path.realpath(repo)}
    (repo / "untracked.txt").write_text("not part of the code\n")
    assert git_commit(str(repo / "sub"))["dirty"] is False  # untracked files do not count
    (repo / "sub" / "model.py").write_text("x = 2\n")
    assert git_commit(str(repo / "sub"))["dirty"] is True


def test_report_names_the_commit_of_the_config_folder(tmp_path, registry):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "audit.yaml").write_text("name: in-git\nanalyzers:\n  accuracy: {}\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "config")
    model, data = _model_and_data()
    report = run(model, data, AuditConfig.from_yaml(repo / "audit.yaml", registry=registry), progress=False)
    code = report.metadata["provenance"]["code"]
    assert code["of"] == "audit config" and code["dirty"] is False and len(code["commit"]) == 40
    html = render_report(report)
    assert "at git commit <code" in html and code["commit"][:12] in html and code["commit"] in html
    assert code["commit"][:12] in card_markdown(report)
