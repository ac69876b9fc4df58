"""Transfer attacks: MI-FGSM's closed form on a linear model and its ball, the surrogate and
the report's numbers, the gradient-masking finding on a masked target, codec and pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.pipeline import AuditConfig, run
from audit.results import metric_spec
from audit.robustness import TransferReport, box_domain, domain_for, mifgsm, pgd, transfer

W = np.array([1.5, -2.0, 0.5, 0.0, 3.0], np.float32)


def test_mifgsm_on_a_linear_model_moves_by_eps_along_sign_w(linear_model):
    """With a constant gradient every step moves eps/steps along -sign(w) for class 1: after all
    steps x - eps * sign(w) (clipped), the strongest L-inf point."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.7, (16, 5)).astype(np.float32)
    y = np.ones(16, np.int32)
    adv = np.asarray(mifgsm(linear_model.apply, linear_model.params, x, y, eps=0.1, steps=5, domain=box_domain((5,))))
    np.testing.assert_allclose(adv, np.clip(x - 0.1 * np.sign(W), 0, 1), atol=1e-6)


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("l2", 0.8)])
def test_mifgsm_stays_in_ball_and_domain(digits, digits_cnn, norm, eps):
    x, y = digits.X[:32], digits.y[:32]
    adv = np.asarray(mifgsm(digits_cnn.apply, digits_cnn.params, x, y, eps=eps, norm=norm, steps=10,
                            domain=domain_for(digits)))
    d = (adv - x).reshape(32, -1)
    size = np.abs(d).max(axis=1) if norm == "linf" else np.sqrt((d ** 2).sum(axis=1))
    assert (size <= eps * (1 + 1e-5)).all() and adv.min() >= 0 and adv.max() <= 1
    assert (digits_cnn.predict(adv) != y).mean() > 0.3  # it is an attack


@pytest.fixture(scope="module")
def digits_transfer(digits, digits_cnn):
    return transfer(digits_cnn, digits, n=96, eps=(0.05, 0.2), epochs=6, steps=10, batch_size=96, seed=0)


def test_transfer_report_numbers(digits, digits_cnn, digits_transfer):
    rep = digits_transfer
    assert rep.surrogate == "cnn" and rep.attacks == ("pgd", "mifgsm")
    assert rep.surrogate_accuracy > 0.8  # a working surrogate
    for a in rep.attacks:
        assert (rep.accuracy[a] <= rep.clean_accuracy + 1e-12).all()
        assert rep.accuracy[a][-1] <= rep.accuracy[a][0] + 0.03  # a larger budget transfers better
        assert rep.surrogate_fooled[a][-1] >= 0.5  # white-box on the surrogate itself works
        assert rep.surrogate_fooled[a][-1] >= rep.surrogate_fooled[a][0]
        np.testing.assert_allclose(rep.success_rate(a), 1 - rep.accuracy[a] / rep.clean_accuracy)
    # a plain CNN: white-box PGD beats transfer, so no masking finding
    assert (rep.white_box_accuracy <= np.min([rep.accuracy[a] for a in rep.attacks], axis=0) + 0.05).all()
    (f,) = rep.findings
    assert f.id == "transfer.gradient_masking" and f.status == "pass"
    m = rep.metrics()
    assert all(metric_spec(TransferReport.METRICS, k) is not None for k in m)
    assert TransferReport.from_dict(rep.to_dict()) == rep


def test_transfer_flags_a_gradient_masked_target(digits, masked_cnn):
    """Quantised inputs zero the target's gradients: white-box PGD fails, transfer does not."""
    rep = transfer(masked_cnn, digits, n=96, eps=(0.2,), epochs=6, steps=10, batch_size=96, labels="model",
                   attacks=("mifgsm",))
    assert rep.labels == "model" and rep.agreement > 0.8
    assert rep.accuracy["mifgsm"][0] < rep.white_box_accuracy[0] - 0.05
    assert rep.findings[0].status == "fail" and "masked" in rep.findings[0].message


def test_transfer_bad_inputs(credit_small, credit_model):
    with pytest.raises(AuditInputError, match="labels"):
        transfer(credit_model, credit_small, labels="teacher")
    with pytest.raises(AuditInputError, match="attacks"):
        transfer(credit_model, credit_small, attacks=("square",))
    with pytest.raises(AuditInputError, match="epochs"):
        transfer(credit_model, credit_small, epochs=0)


def test_transfer_from_the_pipeline(credit_small, credit_model, tmp_path):
    cfg = AuditConfig(analyzers={"transfer": {"n": 100, "epochs": 3, "eps": [0.3], "steps": 5}})
    report = run(credit_model, credit_small, cfg, progress=False)
    res = report.sections["transfer"].result
    assert isinstance(res, TransferReport) and res.surrogate == "mlp"
    assert "transfer.transfer_accuracy:pgd@0.3" in report.metrics()
    html = open(report.to_html(tmp_path / "t.html")).read()
    assert "crafted on a surrogate" in html
    white = pgd(credit_model.apply, credit_model.params, credit_small.part("test").X[:8],
                credit_small.part("test").y[:8], eps=0.3, steps=5, key=__import__("jax").random.key(0))
    assert white.shape == (8, credit_small.X.shape[1])
