"""Attack properties against oracles: closed forms on a linear model, eps balls and domains,
immutable inputs, PGD >= FGSM, APGD >= PGD, determinism, jit and batching contracts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.robustness import (apgd, box_domain, domain_for, fgsm, minimal_perturbation, noise, pgd,
                              square)
from audit.robustness import _core
from audit.robustness import _pgd as pgd_module

KEY = jax.random.key(0)
W = np.array([1.5, -2.0, 0.5, 0.0, 3.0], np.float32)


def _linear_batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 0.9, (n, 5)).astype(np.float32)
    return x, (rng.random(n) < 0.5).astype(np.int32)


def _attacks(norm):
    out = {
        "fgsm": lambda m, x, y, eps, dom: fgsm(m.apply, m.params, x, y, eps=eps, norm=norm, domain=dom),
        "pgd": lambda m, x, y, eps, dom: pgd(m.apply, m.params, x, y, eps=eps, norm=norm, steps=5,
                                             restarts=2, domain=dom, key=KEY),
        "apgd": lambda m, x, y, eps, dom: apgd(m.apply, m.params, x, y, eps=eps, norm=norm, steps=5,
                                               domain=dom, key=KEY),
        "noise": lambda m, x, y, eps, dom: noise(x, eps=eps, norm=norm, domain=dom, key=KEY),
    }
    if norm == "linf":
        out["square"] = lambda m, x, y, eps, dom: square(m.apply, m.params, x, y, eps=eps, queries=30,
                                                         domain=dom, key=KEY)
    return out


def _size(delta, norm):
    flat = np.asarray(delta, np.float64).reshape(len(delta), -1)
    return np.abs(flat).max(axis=1) if norm == "linf" else np.sqrt((flat ** 2).sum(axis=1))


# ---- closed forms on the linear model -------------------------------------------------------
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_fgsm_linear_closed_form_linf(linear_model, eps):
    x, y = _linear_batch()
    adv = np.asarray(fgsm(linear_model.apply, linear_model.params, x, y, eps=eps, domain=box_domain((5,))))
    towards = np.where(y == 0, 1.0, -1.0)[:, None]  # class 0 is pushed up the logit, class 1 down
    expected = np.clip(x + eps * towards * np.sign(W), 0.0, 1.0)
    np.testing.assert_allclose(adv, expected, rtol=0, atol=1e-7)


def test_fgsm_linear_closed_form_l2(linear_model):
    x, y = _linear_batch()
    adv = np.asarray(fgsm(linear_model.apply, linear_model.params, x, y, eps=0.2, norm="l2"))
    towards = np.where(y == 0, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(adv, x + 0.2 * towards * W / np.linalg.norm(W), rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm,dual", [("linf", 1), ("l2", 2)])
def test_minimal_perturbation_linear_equals_distance_to_hyperplane(linear_model, norm, dual):
    x, y = _linear_batch(32, seed=3)
    z = x @ W + 0.25
    y = (z > 0).astype(np.int32)  # all correctly classified
    exact = np.abs(z) / np.linalg.norm(W, ord=dual)
    dist, found = minimal_perturbation(linear_model.apply, linear_model.params, x, y, eps_max=4.0,
                                       norm=norm, search_steps=16, steps=30, key=KEY)
    assert found.all()
    np.testing.assert_allclose(dist, exact, rtol=0, atol=2e-3)
    assert (dist >= exact - 1e-5).all()  # never below the true boundary distance


def test_minimal_perturbation_zero_for_misclassified(linear_model):
    x, _ = _linear_batch(8)
    wrong = ((x @ W + 0.25) <= 0).astype(np.int32)
    dist, found = minimal_perturbation(linear_model.apply, linear_model.params, x, wrong, eps_max=1.0,
                                       search_steps=3, key=KEY)
    assert (dist == 0).all() and found.all()


# ---- eps ball, domain, immutable inputs --------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_adversarials_stay_in_ball_and_domain_images(digits, digits_cnn, norm):
    x, y = digits.test.X[:96], digits.test.y[:96]
    eps = 0.1 if norm == "linf" else 1.0
    dom = domain_for(digits)
    for name, attack in _attacks(norm).items():
        adv = np.asarray(attack(digits_cnn, x, y, eps, dom))
        assert adv.shape == x.shape, name
        assert (_size(adv - x, norm) <= eps * (1 + 1e-5) + 1e-6).all(), name
        assert adv.min() >= 0.0 and adv.max() <= 1.0, name
        assert (_size(adv - x, norm) > 0).any(), name


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_immutable_inputs_never_change(credit_sensitive, credit_sensitive_model, norm):
    data, model = credit_sensitive, credit_sensitive_model
    dom = domain_for(data, immutable=["loan_amount"])
    frozen = np.asarray(dom.mutable) == 0
    names = np.array(data.feature_names)
    assert set(names[frozen]) == ({n for n in names if "=" in n} | {"age", "loan_amount"})
    x, y = data.test.X[:64], data.test.y[:64]
    eps = 0.5 if norm == "linf" else 1.5
    lower, upper = np.asarray(dom.lower), np.asarray(dom.upper)
    for name, attack in _attacks(norm).items():
        adv = np.asarray(attack(model, x, y, eps, dom))
        np.testing.assert_array_equal(adv[:, frozen], x[:, frozen], err_msg=name)
        assert (_size(adv - x, norm) <= eps * (1 + 1e-5) + 1e-6).all(), name
        moved = adv != x
        assert (adv[moved] >= np.broadcast_to(lower, adv.shape)[moved] - 1e-6).all(), name
        assert (adv[moved] <= np.broadcast_to(upper, adv.shape)[moved] + 1e-6).all(), name


def test_domain_allows_categorical_and_sensitive_on_request(credit_sensitive):
    dom = domain_for(credit_sensitive, allow_categorical=True, allow_sensitive=True)
    assert np.asarray(dom.mutable).all()
    dom = domain_for(credit_sensitive, allow_categorical=True)
    names = np.array(credit_sensitive.feature_names)
    assert set(names[np.asarray(dom.mutable) == 0]) == {"age", "sex=female", "sex=male"}


# ---- strength orderings ------------------------------------------------------------------------
def _robust_acc(model, adv, y):
    return float((model.predict(np.asarray(adv)) == y).mean())


def test_pgd_no_weaker_than_fgsm_and_apgd_no_weaker_than_pgd(digits, digits_cnn):
    x, y = digits.test.X[:96], digits.test.y[:96]
    eps = 0.06
    dom = domain_for(digits)
    m = digits_cnn
    acc_fgsm = _robust_acc(m, fgsm(m.apply, m.params, x, y, eps=eps, domain=dom), y)
    acc_pgd = _robust_acc(m, pgd(m.apply, m.params, x, y, eps=eps, steps=20, domain=dom, key=KEY), y)
    acc_apgd = _robust_acc(m, apgd(m.apply, m.params, x, y, eps=eps, steps=20, domain=dom, key=KEY), y)
    assert acc_pgd <= acc_fgsm
    assert acc_apgd <= acc_pgd + 1 / 96
    assert acc_pgd < m.accuracy(x, y) - 0.1  # the attack actually does something


def test_restarts_never_lower_the_margin(digits, digits_cnn):
    x, y = digits.test.X[:96], digits.test.y[:96]
    m, dom = digits_cnn, domain_for(digits)
    _, one = pgd(m.apply, m.params, x, y, eps=0.05, steps=5, domain=dom, key=KEY, return_score=True)
    _, two = pgd(m.apply, m.params, x, y, eps=0.05, steps=5, restarts=3, domain=dom, key=KEY,
                 return_score=True)
    assert (np.asarray(two) >= np.asarray(one)).all()
    assert (np.asarray(two) > np.asarray(one)).any()


def test_returned_margin_matches_the_returned_point(digits, digits_cnn):
    x, y = digits.test.X[:96], digits.test.y[:96]
    m = digits_cnn
    for attack in (pgd, apgd):
        adv, sc = attack(m.apply, m.params, x, y, eps=0.05, steps=6, domain=domain_for(digits), key=KEY,
                         return_score=True)
        np.testing.assert_allclose(np.asarray(sc), np.asarray(_core.score(m.apply(m.params, adv), jnp.asarray(y),
                                                                            False)), atol=1e-4)


def test_targeted_pgd_reaches_its_target(digits, digits_cnn):
    x = digits.test.X[:96]
    target = (digits.test.y[:96] + 1) % 10
    m = digits_cnn
    adv = pgd(m.apply, m.params, x, target, eps=0.3, steps=40, targeted=True, domain=domain_for(digits), key=KEY)
    assert (m.predict(np.asarray(adv)) == target).mean() >= 0.9


def test_square_fools_the_linear_model_within_budget(linear_model):
    x, _ = _linear_batch(64, seed=5)
    z = x @ W + 0.25
    y = (z > 0).astype(np.int32)
    dist = np.abs(z) / np.abs(W).sum()
    eps = 0.2
    adv, sc, used = square(linear_model.apply, linear_model.params, x, y, eps=eps, queries=200, key=KEY,
                           return_score=True, return_queries=True)
    fooled = np.asarray(sc) > 0
    # every example whose boundary is well inside the ball is fooled; none beyond it
    assert fooled[dist < 0.5 * eps].all()
    assert not fooled[dist > eps * 1.0001].any()
    assert (np.asarray(used) <= 200).all() and (np.asarray(used) >= 1).all()


def test_square_is_gradient_free(masked_cnn, digits_cnn, digits):
    x, y = digits.test.X[:96], digits.test.y[:96]
    m, dom = masked_cnn, domain_for(digits)
    clean = m.predict(x) == y
    fooled_pgd = m.predict(np.asarray(pgd(m.apply, m.params, x, y, eps=0.2, steps=10, domain=dom, key=KEY))) != y
    fooled_sq = m.predict(np.asarray(square(m.apply, m.params, x, y, eps=0.2, queries=200, domain=dom,
                                            key=KEY))) != y
    assert clean.mean() > 0.8
    assert (fooled_sq & clean).mean() > (fooled_pgd & clean).mean() + 0.2


# ---- determinism, jit, batching, compile contracts --------------------------------------------------
def test_same_key_same_result_and_keys_matter(digits, digits_cnn):
    x, y = digits.test.X[:96], digits.test.y[:96]
    m, dom = digits_cnn, domain_for(digits)
    a = pgd(m.apply, m.params, x, y, eps=0.1, steps=3, domain=dom, key=KEY)
    b = pgd(m.apply, m.params, x, y, eps=0.1, steps=3, domain=dom, key=KEY)
    c = pgd(m.apply, m.params, x, y, eps=0.1, steps=3, domain=dom, key=jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


@pytest.mark.parametrize("attack", ["pgd", "apgd", "square"])
def test_host_loop_equals_compiled_loop_and_jit(credit_small, credit_model, attack):
    m = credit_model
    x, y = credit_small.test.X[:32], credit_small.test.y[:32]
    dom = domain_for(credit_small)
    fn = {"pgd": lambda **k: pgd(m.apply, m.params, x, y, eps=0.3, steps=6, domain=dom, key=KEY, **k),
          "apgd": lambda **k: apgd(m.apply, m.params, x, y, eps=0.3, steps=6, domain=dom, key=KEY, **k),
          "square": lambda **k: square(m.apply, m.params, x, y, eps=0.3, queries=20, domain=dom, key=KEY,
                                       **k)}[attack]
    host = np.asarray(fn(loop="host"))
    np.testing.assert_allclose(np.asarray(fn(loop="scan")), host, atol=1e-5)
    jitted = jax.jit(lambda: fn())()  # inside jit the attack runs as lax.fori_loop
    np.testing.assert_allclose(np.asarray(jitted), host, atol=1e-5)


def test_batched_equals_per_example(credit_small, credit_model):
    m = credit_model
    x, y = credit_small.test.X[:6], credit_small.test.y[:6]
    dom = domain_for(credit_small)
    batch = np.asarray(pgd(m.apply, m.params, x, y, eps=0.3, steps=8, random_start=False, domain=dom, key=KEY))
    single = np.concatenate([np.asarray(pgd(m.apply, m.params, x[i:i + 1], y[i:i + 1], eps=0.3, steps=8,
                                            random_start=False, domain=dom, key=KEY)) for i in range(6)])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_per_example_eps(linear_model):
    x, y = _linear_batch(8)
    eps = np.linspace(0.0, 0.35, 8).astype(np.float32)
    adv = np.asarray(pgd(linear_model.apply, linear_model.params, x, y, eps=eps, steps=5, key=KEY))
    assert (_size(adv - x, "linf") <= eps + 1e-6).all()
    assert (adv[0] == x[0]).all()


def test_no_recompilation_on_second_call(digits, digits_cnn):
    m, dom = digits_cnn, domain_for(digits)
    x, y = digits.test.X[:96], digits.test.y[:96]
    pgd(m.apply, m.params, x, y, eps=0.1, steps=2, domain=dom, key=KEY)
    step = _core._jitted(pgd_module._step, "gradient")  # the wrapper run_steps uses
    before = step._cache_size()
    assert before >= 1
    pgd(m.apply, m.params, x[::-1].copy(), y[::-1].copy(), eps=0.05, steps=4, restarts=2, domain=dom,
        key=jax.random.key(3))
    assert step._cache_size() == before


# ---- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"eps": -0.1}, "non-negative"),
    ({"eps": float("nan")}, "finite"),
    ({"eps": float("inf")}, "finite"),
    ({"eps": 1.5}, "beyond the input domain"),
    ({"eps": 0.1, "norm": "l1"}, "not supported"),
    ({"eps": 0.1, "loss": "hinge"}, "not supported"),
    ({"eps": 0.1, "steps": 0}, "positive integer"),
    ({"eps": 0.1, "restarts": 0}, "positive integer"),
    ({"eps": np.ones(3) * 0.1}, "one value per row"),
])
def test_bad_attack_settings(digits, digits_cnn, kwargs, match):
    m = digits_cnn
    x, y = digits.test.X[:8], digits.test.y[:8]
    with pytest.raises(AuditInputError, match=match):
        pgd(m.apply, m.params, x, y, domain=domain_for(digits), key=KEY, **kwargs)


def test_bad_labels_and_shapes(digits, digits_cnn):
    m = digits_cnn
    x, y = digits.test.X[:8], digits.test.y[:8]
    with pytest.raises(AuditInputError, match=r"class ids in \[0, 10\)"):
        fgsm(m.apply, m.params, x, y + 10, eps=0.1)
    with pytest.raises(AuditInputError, match="one label per row"):
        fgsm(m.apply, m.params, x, y[:3], eps=0.1)
    with pytest.raises(AuditInputError, match="integer class ids"):
        fgsm(m.apply, m.params, x, y.astype(np.float32), eps=0.1)


def test_dlr_needs_three_classes(linear_model):
    x, y = _linear_batch(4)
    with pytest.raises(AuditInputError, match="at least 3 classes"):
        apgd(linear_model.apply, linear_model.params, x, y, eps=0.1, steps=2, loss="dlr", key=KEY)


def test_bad_masks(credit_small, linear_model):
    with pytest.raises(AuditInputError, match="mutable mask has shape"):
        domain_for(credit_small, mutable=np.ones(3, bool))
    with pytest.raises(AuditInputError, match="neither raw columns"):
        domain_for(credit_small, immutable=["shoe_size"])
    x, y = _linear_batch(4)
    with pytest.raises(AuditInputError, match=r"domain.mutable has shape"):
        pgd(linear_model.apply, linear_model.params, x, y, eps=0.1, key=KEY,
            domain=box_domain((5,))._replace(mutable=jnp.ones(4)))
    with pytest.raises(AuditInputError, match="change nothing"):
        pgd(linear_model.apply, linear_model.params, x, y, eps=0.1, key=KEY,
            domain=box_domain((5,), mutable=np.zeros(5, bool)))


def test_attack_specs_declare_the_settings_they_read():
    """`AttackSpec.reads` keys the shared adversarial-example cache: an attack that read a setting
    it does not declare could be served another setting's examples."""
    from audit.robustness._registry import ATTACKS

    class Recording(dict):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.read = set()

        def __getitem__(self, k):
            self.read.add(k)
            return super().__getitem__(k)

        def get(self, k, default=None):
            self.read.add(k)
            return super().get(k, default)

    apply = lambda p, x: x @ p  # noqa: E731 - a 3-class linear model on 4 inputs
    params = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)), jnp.float32)
    x = np.random.default_rng(1).uniform(0.2, 0.8, size=(4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0])
    dom = box_domain((4,))
    for name, spec in ATTACKS.items():
        settings = Recording(steps=2, restarts=1, apgd_steps=2, square_queries=4)
        norm = spec.norms[0]
        spec.run(apply, params, x, y, eps=0.1, norm=norm, domain=dom, key=jax.random.key(0), settings=settings)
        assert settings.read <= set(spec.reads), (name, settings.read)
        assert set(spec.reads) - {"loss"} <= settings.read, (name, settings.read)


def test_square_host_loop_packs_standing_rows_without_changing_them(digits, digits_cnn, monkeypatch):
    """Fooled rows leave Square's host batch (each row draws from its own key), so the packed loop
    gives exactly the compiled loop's adversarials, margins and query counts; a row's result does
    not depend on the other rows of its call."""
    from audit.robustness import _square

    m, dom = digits_cnn, domain_for(digits)
    x, y = digits.test.X[:48], digits.test.y[:48]
    seen = []  # the batch sizes the host loop's step was compiled for
    pool_step = _square._pool_step
    monkeypatch.setattr(_square, "_pool_step", lambda s, c, st: (seen.append(st[0].shape[0]), pool_step(s, c, st))[1])
    kw = dict(eps=0.15, queries=400, domain=dom, key=KEY, return_score=True, return_queries=True)
    host = [np.asarray(a) for a in square(m.apply, m.params, x, y, loop="host", **kw)]
    scan = [np.asarray(a) for a in square(m.apply, m.params, x, y, loop="scan", **kw)]
    assert seen[0] == 48 and min(seen) < 48  # the standing rows were packed into a smaller batch
    for h, s in zip(host, scan):
        np.testing.assert_allclose(h, s, atol=1e-6)
    assert host[2].sum() < 48 * 400  # fooled rows stopped querying
    half = [np.asarray(a) for a in square(m.apply, m.params, x[:24], y[:24], loop="host", **kw)]
    for h, a in zip(host, half):  # the first 24 rows alone: other company, other packing, same results
        np.testing.assert_allclose(a, h[:24], atol=1e-6)


def test_pooled_square_gives_each_row_what_its_own_call_gives(digits, digits_cnn):
    """`square_pooled` runs the rows of several eps and several calls through one pool whose rows
    leave as they finish; row r gets exactly the adversarial `square` gives row `positions[r]` of a
    call with key `call_keys[r]` at eps `eps[r]`."""
    from audit.robustness._square import square_pooled

    m, dom = digits_cnn, domain_for(digits)
    x, y = digits.test.X[:40], digits.test.y[:40]
    calls = [(0.05, 0, slice(0, 24)), (0.05, 1, slice(24, 40)), (0.3, 0, slice(0, 24)), (0.3, 1, slice(24, 40))]
    want, eps, keys, positions = [], [], [], []
    for e, c, rows in calls:
        key = jax.random.fold_in(KEY, 1000 * c + int(100 * e))
        want.append(np.asarray(square(m.apply, m.params, x[rows], y[rows], eps=e, queries=150, domain=dom, key=key)))
        n = rows.stop - rows.start
        eps += [e] * n
        keys += [np.asarray(jax.random.key_data(key))] * n
        positions += list(range(n))
    got = square_pooled(m.apply, m.params, np.concatenate([x[r] for _, _, r in calls]),
                        np.concatenate([y[r] for _, _, r in calls]), eps=np.array(eps), call_keys=np.stack(keys),
                        positions=np.array(positions), queries=150, slots=16, domain=dom)
    want = np.concatenate(want)
    np.testing.assert_allclose(got, want, atol=1e-6)
    fooled = m.predict(got) != np.concatenate([y[r] for _, _, r in calls])
    assert 0 < fooled[:40].sum() < fooled[40:].sum()  # the attack did something, more at the larger eps
    assert np.abs(got - np.concatenate([x[r] for _, _, r in calls])).max() <= 0.3 + 1e-6


@pytest.mark.parametrize("attack", [pgd, apgd])
def test_host_loop_stops_once_every_row_is_fooled_and_fools_the_same_rows(digits, digits_cnn, monkeypatch, attack):
    m, dom = digits_cnn, domain_for(digits)
    x, y = digits.test.X[:32], digits.test.y[:32]
    steps_run = []
    jitted = _core._jitted

    def counting(fn, kind):
        inner = jitted(fn, kind)
        return (lambda *a: steps_run.append(1) or inner(*a)) if fn.__name__ == "_step" else inner

    def run(eps, check_every, stop=True):
        monkeypatch.setattr(_core, "CHECK_EVERY", check_every)
        steps_run.clear()
        adv, score = attack(m.apply, m.params, x, y, eps=eps, steps=20, restarts=2, domain=dom, key=KEY,
                            loop="host", return_score=True, stop_when_fooled=stop)
        return np.asarray(adv), np.asarray(score), len(steps_run)

    monkeypatch.setattr(_core, "_jitted", counting)
    adv, score, n = run(0.3, 4)  # every row falls within a few steps
    full_adv, full_score, full_n = run(0.3, 0)
    assert run(0.3, 4, stop=False)[2] == 40  # by default the strongest point of the whole budget
    assert full_n == 40 and n < 20 and (score > _core.FOOLED_MARGIN).all() and (full_score > 0).all()
    assert np.abs(adv - x).max() <= 0.3 + 1e-6 and (m.predict(adv) != y).all()
    adv, score, n = run(0.03, 4)  # some rows stand: the full budget, the very same points
    full_adv, full_score, full_n = run(0.03, 0)
    assert 0 < (score > 0).sum() < len(y) and n == full_n == 40
    np.testing.assert_array_equal(adv, full_adv)
    np.testing.assert_array_equal(score, full_score)
