"""Coalition values from distinct masked rows: the same rows and values as the full enumeration."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from audit.explain import _players
from audit.explain._distinct import distinct_coalition_values, distinct_rows
from audit.explain._shap_exact import all_coalitions
from audit.models import Model

OWNER = np.array([0, 1, 1, 1, 2, 3, 3, 4])  # 5 players over 8 inputs, two of them blocks (one-hots)


def _model(seed: int = 0) -> Model:
    rng = np.random.default_rng(seed)
    params = {"w1": jnp.asarray(rng.normal(size=(8, 16)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)}
    return Model.from_function(lambda p, x: jnp.tanh(x @ p["w1"]) @ p["w2"], params, input_shape=(8,),
                               class_names=("a", "b", "c"))


def _tied(n: int, seed: int) -> np.ndarray:
    """Rows whose players take few values, so x and a background row often share players."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(n, 8)).astype(np.float32) * np.float32(0.7)


def _masked(x, bg, z):
    return np.where(z[:, OWNER][:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, 8)


def test_distinct_rows_counts_the_unique_masked_rows():
    x, bg, z = _tied(4, 0), _tied(9, 1), all_coalitions(5)
    unique = sum(len(np.unique(_masked(xi, bg, z), axis=0)) for xi in x)
    # rows equal for different background rows count once per background row in the layout
    per_pair = sum(len(np.unique(_masked(xi, bg[b:b + 1], z), axis=0)) for xi in x for b in range(len(bg)))
    assert distinct_rows(x, bg, OWNER, 5) == per_pair >= unique
    assert per_pair < len(x) * len(z) * len(bg) * 0.6  # ties make the shortcut worth it here


@pytest.mark.parametrize("output", ["probability", "logit"])
def test_distinct_values_equal_the_full_enumeration(output, monkeypatch):
    model, x, bg, z = _model(), _tied(6, 2), _tied(11, 3), all_coalitions(5)
    cls = np.array([0, 1, 2, 2, 1, 0])
    fast = distinct_coalition_values(model, x, cls, bg, z, OWNER, output=output, chunk_rows=40,
                                     output_fn=_players.output_fn)
    monkeypatch.setattr(_players, "DISTINCT_SHARE", 0.0)  # the full enumeration
    full = _players.coalition_values(model, x, cls, bg, z, OWNER, output=output, chunk_rows=40)
    np.testing.assert_allclose(fast, full, rtol=0, atol=1e-6)


def test_coalition_values_takes_the_shortcut_only_when_it_pays(monkeypatch):
    model, z = _model(1), all_coalitions(5)
    calls = []
    real = distinct_coalition_values
    monkeypatch.setattr("audit.explain._distinct.distinct_coalition_values",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    _players.coalition_values(model, _tied(3, 4), np.zeros(3, int), _tied(7, 5), z, OWNER, output="logit")
    assert calls == [1]
    rng = np.random.default_rng(6)  # continuous rows: nothing shared, the full enumeration
    x, bg = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)
    _players.coalition_values(model, x, np.zeros(3, int), bg, z, OWNER, output="logit")
    assert calls == [1]
