"""Adversarial training recipes: attack properties, objectives, train(adversarial=...), the before/after audit."""

from __future__ import annotations

import json
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from audit import datasets
from audit.errors import AuditInputError
from audit.models import train
from audit.results import to_jsonable
from audit.robustness import (AdversarialTraining, AdversarialTrainingReport, adversarial_training,
                              domain_for, pgd)


@pytest.mark.parametrize("method", ["pgd", "fgsm", "trades"])
def test_perturbations_stay_in_the_ball_and_domain_and_raise_the_loss(method, digits_cnn, digits):
    recipe = AdversarialTraining(method, eps=0.1, steps=5).prepare(digits)
    x, y = jnp.asarray(digits.test.X[:64]), jnp.asarray(digits.test.y[:64])
    adv = jax.jit(lambda x, y, k: recipe.perturb(digits_cnn.apply, digits_cnn.params, x, y, k))(
        x, y, jax.random.key(0))
    assert float(jnp.max(jnp.abs(adv - x))) <= 0.1 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    ce = lambda v: optax.softmax_cross_entropy_with_integer_labels(digits_cnn.apply(digits_cnn.params, v), y).mean()
    assert float(ce(adv)) > float(ce(x)) + 0.1


def test_fgsm_recipe_on_a_linear_model_steps_against_the_weights(linear_model):
    """Wong et al.: from a uniform start d0 in [-eps, eps], one step of 1.25 eps along the loss gradient
    sign (-sign(w) for class 1), clipped to the ball: d * sign(w) = clip(d0 * sign(w) - 1.25 eps, -eps, eps),
    so every weighted coordinate moves between 0.25 eps and eps against its weight."""
    recipe = AdversarialTraining("fgsm", eps=0.2)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 5)), jnp.float32)
    y = jnp.ones(8, jnp.int32)  # the logit of class 1 is x @ w + b: the attack lowers it
    adv = recipe.perturb(linear_model.apply, linear_model.params, x, y, jax.random.key(1))
    w = np.asarray(linear_model.params["w"])
    moved = (np.asarray(adv) - np.asarray(x))[:, w != 0] * np.sign(w[w != 0])
    assert moved.max() <= -0.25 * 0.2 + 1e-6 and moved.min() >= -0.2 - 1e-6
    assert np.ptp(moved) > 0.01  # the random start is there


def test_objectives():
    clean = jnp.asarray([[2.0, 0.0], [0.0, 1.0]])
    adv = jnp.asarray([[0.0, 1.0], [0.0, 1.0]])
    y = jnp.asarray([0, 1])
    ce = lambda z: optax.softmax_cross_entropy_with_integer_labels(z, y)
    np.testing.assert_allclose(AdversarialTraining("pgd").objective(None, adv, y), ce(adv), rtol=1e-6)
    np.testing.assert_allclose(AdversarialTraining("pgd", clean_weight=0.25).objective(clean, adv, y),
                               0.25 * ce(clean) + 0.75 * ce(adv), rtol=1e-6)
    trades = AdversarialTraining("trades", beta=3.0).objective(clean, adv, y)
    np.testing.assert_allclose(trades[1], ce(clean)[1], rtol=1e-6)  # identical logits: KL = 0
    p, q = jax.nn.softmax(clean[0]), jax.nn.softmax(adv[0])
    np.testing.assert_allclose(trades[0], ce(clean)[0] + 3.0 * jnp.sum(p * jnp.log(p / q)), rtol=1e-5)
    assert AdversarialTraining("trades").needs_clean and not AdversarialTraining("pgd").needs_clean


def test_eps_warmup_ramps_linearly():
    r = AdversarialTraining("pgd", eps=0.2, warmup=0.5)
    assert [float(r.current_eps(p)) for p in (0.0, 0.25, 0.5, 1.0)] == pytest.approx([0.0, 0.1, 0.2, 0.2])


def test_recipe_and_train_bad_input(digits):
    with pytest.raises(AuditInputError, match="method"):
        AdversarialTraining("free")
    with pytest.raises(AuditInputError, match="eps"):
        AdversarialTraining("pgd", eps=0.0)
    with pytest.raises(AuditInputError, match="beyond the input domain"):
        AdversarialTraining("pgd", eps=3.0).prepare(digits)
    with pytest.raises(AuditInputError, match="AdversarialTraining"):
        train("cnn", digits, epochs=1, adversarial="pgd", progress=False)


def test_train_adversarial_is_seeded_and_records_robust_validation(digits, digits_cnn):
    recipe = AdversarialTraining("fgsm", eps=0.1)
    kw = dict(epochs=1, channels=(4, 8), hidden=16, progress=False, seed=0, adversarial=recipe)
    a, b = train("cnn", digits, **kw), train("cnn", digits, **kw)
    assert a.fingerprint() == b.fingerprint()
    history = a.metadata["training"]
    assert history["settings"]["adversarial"]["method"] == "fgsm"
    assert {"val_robust_loss", "val_robust_accuracy"} <= set(history["epochs"][0])
    assert "adversarial" not in digits_cnn.metadata["training"]["settings"]


@pytest.mark.slow
def test_adversarial_training_on_mnist_raises_pgd_robust_accuracy():
    mnist = datasets.load("mnist", seed=0)
    x, y = mnist.test.X[:300], mnist.test.y[:300]
    domain = domain_for(mnist)

    def robust(model):
        adv = pgd(model.apply, model.params, x, y, eps=0.1, steps=20, domain=domain, key=jax.random.key(0))
        return model.accuracy(np.asarray(adv), y)

    kw = dict(epochs=6, channels=(16, 32), hidden=64, progress=False, seed=0)
    plain = train("cnn", mnist, **kw)
    robust_model = train("cnn", mnist, adversarial=AdversarialTraining("fgsm", eps=0.1, warmup=0.2), **kw)
    assert robust_model.accuracy(x, y) > 0.8
    before, after = robust(plain), robust(robust_model)
    assert after > before + 0.15  # measured: 0.75 -> 0.94 on 300 test images
    assert 1 - after < 0.5 * (1 - before)  # robust error at least halved


@pytest.mark.slow
def test_before_after_report(digits_cnn, digits):
    report = adversarial_training(digits_cnn, digits, method="pgd", eps=0.1, steps=3, epochs=4, n=60,
                                  eval_steps=5, bootstrap=0, seed=0)
    m = report.metrics()
    assert m["robust_accuracy:before@0"] == pytest.approx(m["clean_accuracy:before"])
    assert m["robust_accuracy_gain@0.1"] == pytest.approx(m["robust_accuracy:after@0.1"] - m["robust_accuracy:before@0.1"])
    assert [r["model"] for r in report.table()] == ["before", "after"]
    assert report.history["settings"]["adversarial"]["method"] == "pgd"
    assert {f.id for f in report.findings} == {"adversarial_training_gain", "adversarial_training_clean_cost"}
    again = AdversarialTrainingReport.from_dict(json.loads(json.dumps(to_jsonable(report.to_dict()))))
    assert again == report
    from audit.render.figures import certify as cfig

    assert len(cfig.adversarial_training_figures(report)) == 1
