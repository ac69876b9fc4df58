"""Predictive uncertainty from a distribution of predictions: MC dropout and deep ensembles.

MC dropout (Gal & Ghahramani 2016): the model's own dropout layers stay on at prediction time
(batch norm stays in eval mode) and `samples` stochastic passes give a distribution of class
probabilities. Deep ensembles (Lakshminarayanan et al. 2017): `size` copies of the architecture
retrained from different seeds (`audit.models.retrainer`). From the (members, n, K) probabilities:
predictive entropy H(mean p) and mutual information H(mean p) - mean H(p) (the disagreement
between members, epistemic uncertainty); both are OOD scores, higher = more uncertain.
"""

from __future__ import annotations

import numpy as np

from audit.errors import AuditInputError

UNCERTAINTY = ("mc_dropout", "ensemble")


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) over the last axis."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def mutual_information(probs: np.ndarray) -> np.ndarray:
    """H(mean over members) - mean over members of H: (members, n, K) -> (n,)."""
    return np.maximum(entropy(probs.mean(axis=0)) - entropy(probs).mean(axis=0), 0.0)


def _dropout_module(model, seed: int = 0):
    """The model's NNX module with its weights, dropout on and everything else in eval mode (or why not)."""
    from flax import nnx

    from audit.models._factory import module_of

    module = module_of(model, seed=seed)  # the seed only drives the dropout masks: weights are replaced
    if not isinstance(module, nnx.Module):
        return None, "MC dropout needs an NNX architecture the audit can rebuild (zoo or factory)"
    nnx.update(module, model.params)
    module.eval()
    dropouts = [m for _, m in nnx.iter_graph(module) if isinstance(m, nnx.Dropout) and m.rate > 0]
    if not dropouts:
        return None, "the model has no dropout layers"
    for m in dropouts:
        m.deterministic = False
    return module, None


def mc_dropout_probs(model, x: np.ndarray, *, samples: int = 20, seed: int = 0,
                     batch_size: int = 1024) -> np.ndarray:
    """(samples, n, K) class probabilities with dropout on; AuditInputError when the model has none."""
    import jax
    from flax import nnx

    module, why = _dropout_module(model, seed)
    if module is None:
        raise AuditInputError(f"mc_dropout: {why}.")

    @nnx.jit
    def forward(mod, xb):
        return jax.nn.softmax(mod(xb), axis=-1)

    x = np.asarray(x, np.float32)
    n = len(x)
    size = min(batch_size, max(n, 1))
    padded = np.zeros(((n + size - 1) // size * size, *x.shape[1:]), np.float32)
    padded[:n] = x
    out = np.stack([np.concatenate([np.asarray(forward(module, padded[i:i + size]))
                                    for i in range(0, len(padded), size)])[:n] for _ in range(samples)])
    return out.astype(np.float64)


def ensemble_members(model, data, *, size: int = 3, seed: int = 0, train_options=None) -> list:
    """`size` models of the same architecture retrained from seeds seed + 1 .. seed + size (the
    audited model is not one of them, so its own luck does not count twice)."""
    from audit.models import retrain_unavailable, retrainer

    why = retrain_unavailable(model)
    if why:
        raise AuditInputError(f"ensemble: {why}.")
    return [retrainer(model, seed=seed + 1 + k, train_options=train_options)[0](data) for k in range(size)]
