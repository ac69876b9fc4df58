"""SHAP interaction values for any JAX model: which players act together, not only which matter.

`shap_interactions` returns, per example, a (P, P) matrix (Lundberg et al. 2020): off the
diagonal half the pairwise Shapley interaction index, on it the main effect, so every row sums
to the player's SHAP value and the whole matrix to f(x) - E_b f(b). The game is the same
interventional one as `compute_shap` (v(S) = E_b f(x_S, b_rest)), over the same players (raw
columns, inputs or image patches). "exact" combines all 2^P coalition values (the ones exact SHAP
uses); "sampled" draws Walecki path blocks per background row (see `_interaction_designs`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.explain import _players
from audit.explain._attribution import check_seed
from audit.explain._interaction_designs import (default_budget, exact_interactions, min_budget,
                                                path_design)
from audit.explain._players import CHUNK_ROWS, OUTPUTS, baseline_values, coalition_values, player_data
from audit.explain._shap import _as_rows, _choice, _class_setting
from audit.explain._shap_exact import all_coalitions, shapley_matrix
from audit.results import Finding, MetricSpec, Provenance, Result, timer

METHODS = ("auto", "exact", "sampled")
AUTO_EXACT_PLAYERS = 12  # as for SHAP values: 2^12 coalitions, about the sampled default budget
MAX_EXACT_PLAYERS = 16  # the exact combination holds (P, 2^P) matrices per example
DESIGN_CELLS = 1 << 22  # coalitions x players of all sampled designs together (bounded memory)
TOP_METRIC_PAIRS = 5  # pairs reported as interaction:<a>~<b> metrics


@dataclasses.dataclass(frozen=True, eq=False)
class InteractionResult(Result):
    """SHAP interaction values of `n` examples over `P` players, one class per example.

    values (n, P, P): symmetric; values[i].sum(axis=1) == shap_values[i]; values[i].sum() ==
    model_output[i] - base_values[i]. data (n, P): the players' values (as in ShapResult).
    """

    SCHEMA = "audit.explain.interactions/1"
    METRICS = (
        MetricSpec("interaction_share", "info", "Share of attribution in interactions",
                   "Mean |off-diagonal interaction| over mean |interaction matrix| entries, summed "
                   "over the explained examples: 0 for an additive model."),
        MetricSpec("interaction:<pair>", "info", "Interaction strength <pair>",
                   "Mean over the explained examples of |Phi_ab| + |Phi_ba|, in units of the "
                   "explained output, for the strongest pairs."),
        MetricSpec("interaction_efficiency_gap", "lower", "Interaction efficiency gap",
                   "Largest |sum of the interaction matrix - (f(x) - base value)| over the examples."),
    )

    values: np.ndarray
    shap_values: np.ndarray
    base_values: np.ndarray
    model_output: np.ndarray
    data: np.ndarray
    feature_names: tuple[str, ...]
    class_index: np.ndarray
    provenance: Provenance
    class_names: tuple[str, ...] = ()
    output: str = "probability"

    def strength(self) -> np.ndarray:
        """(P, P) mean over examples of |Phi_ij| + |Phi_ji| off the diagonal; the diagonal holds
        mean |main effect|."""
        a = np.abs(self.values).mean(axis=0)
        out = a + a.T
        np.fill_diagonal(out, np.diag(a))
        return out

    def top_pairs(self, k: int = 10) -> list[tuple[str, str, float]]:
        """The k strongest pairs (name, name, strength), strongest first."""
        s = self.strength()
        i, j = np.triu_indices(len(s), 1)
        order = np.argsort(-s[i, j], kind="stable")[:k]
        return [(self.feature_names[i[o]], self.feature_names[j[o]], float(s[i[o], j[o]])) for o in order]

    def partner(self, j: int) -> int:
        """The player interacting most with player j (itself when P == 1)."""
        s = self.strength()[j].copy()
        s[j] = -np.inf
        return int(np.argmax(s)) if len(s) > 1 else j

    @property
    def efficiency_gap(self) -> np.ndarray:
        return self.values.sum(axis=(1, 2)) - (self.model_output - self.base_values)

    def metrics(self) -> dict[str, float]:
        a = np.abs(self.values).mean(axis=0)
        total = float(a.sum())
        out = {"interaction_share": float((total - np.trace(a)) / total) if total > 0 else 0.0}
        for x, y, s in self.top_pairs(TOP_METRIC_PAIRS):
            out[f"interaction:{x}~{y}"] = s
        out["interaction_efficiency_gap"] = float(np.abs(self.efficiency_gap).max()) if len(self.values) else 0.0
        return out

    @property
    def findings(self) -> tuple[Finding, ...]:
        if self.values.shape[1] < 2 or not len(self.values):
            return ()
        share = self.metrics()["interaction_share"]
        x, y, s = self.top_pairs(1)[0]
        return (Finding(
            id="explain.interactions", status="pass", title="Feature interactions",
            message=(f"{share:.0%} of the attribution lies in interactions between players; the "
                     f"strongest pair is {x} and {y} (mean |interaction| {s:.3g})."),
            metric="interaction_share", value=share),)


def _resolve_method(method: str, n_players: int, n_samples: int | None) -> str:
    if method == "auto":
        method = "exact" if n_players <= AUTO_EXACT_PLAYERS and n_samples is None else "sampled"
    if n_players < 2:
        raise AuditInputError(f"interactions need at least 2 players; got {n_players}.")
    if method == "exact":
        if n_samples is not None:
            raise AuditInputError("method='exact' enumerates every coalition and takes no n_samples; "
                                  "drop n_samples or use method='sampled'.")
        if n_players > MAX_EXACT_PLAYERS:
            raise AuditInputError(f"method='exact' with {n_players} players needs 2^{n_players} "
                                  f"coalitions; use at most {MAX_EXACT_PLAYERS} players (a larger "
                                  "patch) or method='sampled'.")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer))
                                  or n_samples < min_budget(n_players)):
        raise AuditInputError(f"n_samples={n_samples!r}: sampled interactions over {n_players} players "
                              f"need an integer of at least {min_budget(n_players)} coalitions (one "
                              f"block in which every pair is sampled; default {default_budget(n_players)}).")
    return method


def exact_values(model, flat, cls, bg_flat, owner, n_players, *, output):
    """Exact (interactions (n, P, P), SHAP values (n, P), v(empty) (n,), f(x) (n,))."""
    v = coalition_values(model, flat, cls, bg_flat, all_coalitions(n_players), owner, output=output,
                         chunk_rows=CHUNK_ROWS)
    phi = v @ shapley_matrix(n_players).T
    inter = exact_interactions(v, n_players)
    idx = np.arange(n_players)
    inter[:, idx, idx] = phi - inter.sum(axis=2)
    return inter, phi, v[:, 0], v[:, -1]


def sampled_values(model, flat, cls, bg_flat, owner, n_players, *, budget, seed, output):
    """Sampled (interactions, SHAP values, v(empty), f(x)): each background row's single-baseline
    game is estimated from its own design, and the estimates are averaged (the interventional
    game is their mean), so sampling errors of different rows average out."""
    p, nb = n_players, len(bg_flat)
    m = len(path_design(p, budget, seed, 1)[0][0])
    k = int(min(nb, max(1, DESIGN_CELLS // max(1, m * p))))
    designs, marginal, players, pair_rows, weight, pairs = path_design(p, budget, seed, k)
    design_of = np.arange(nb) % k
    pair_id = (pairs[..., 0] * p + pairs[..., 1])[design_of]  # (B, samples)
    player_id = players[design_of]  # (B, orders * P)
    n_orders = players.shape[1] // p
    n = len(flat)
    inter, phi, v0, fx = np.zeros((n, p, p)), np.zeros((n, p)), np.zeros(n), np.zeros(n)
    for i, u in enumerate(baseline_values(model, flat, cls, bg_flat, designs, design_of, owner,
                                          output=output, chunk_rows=CHUNK_ROWS)):
        d = (u[pair_rows[:, 0]] - u[pair_rows[:, 1]] - u[pair_rows[:, 2]] + u[pair_rows[:, 3]]) * weight[:, None]
        sii = np.bincount(pair_id.ravel(), weights=d.T.ravel(), minlength=p * p).reshape(p, p) / nb
        off = (sii + sii.T) / 2.0  # half the interaction index on both sides of the diagonal
        mc = u[marginal[:, 0]] - u[marginal[:, 1]]
        phi[i] = np.bincount(player_id.ravel(), weights=mc.T.ravel(), minlength=p) / (n_orders * nb)
        np.fill_diagonal(off, phi[i] - off.sum(axis=1))
        inter[i], v0[i], fx[i] = off, u[0].mean(), u[1, 0]
    return inter, phi, v0, fx


def shap_interactions(model, X: Any, background: Any, *, method: str = "auto", n_samples: int | None = None,
                      players: str | None = None, patch: int | None = None,
                      target: int | Sequence[int] | None = None, output: str = "probability",
                      seed: int = 0, data=None) -> InteractionResult:
    """SHAP interaction values (Lundberg et al. 2020) of `model` on rows `X` against `background`.

    `.values` has shape (n, P, P): half the pairwise Shapley interaction index off the diagonal,
    the main effect on it; rows sum to the SHAP values `compute_shap` gives for the same game.
    method: "exact" (all 2^P coalitions, the "auto" choice up to 12 players), or "sampled"
    (`n_samples` coalitions per background row, default 2048, drawn as blocks of player orders
    in which every pair is adjacent once; each background row draws its own). players, patch,
    target, output and data as for `shap_values` (one name and default for the explained class). Same seed, same values.
    """
    method = _choice("method", method, METHODS)
    output = _choice("output", output, OUTPUTS)
    seed = check_seed(seed)
    x = _as_rows("X", X, model)
    bg = _as_rows("background", background, model)
    pl = _players.resolve(model, data, players, patch, "exact")
    method = _resolve_method(method, pl.n, n_samples)
    requested_class = _class_setting(target, len(x), model)
    with timer() as t:
        flat, bg_flat = x.reshape(len(x), -1), bg.reshape(len(bg), -1)
        if requested_class is not None:
            cls = np.broadcast_to(np.asarray(requested_class, np.int64), (len(x),)).copy()
        elif model.n_classes == 2:
            cls = np.ones(len(x), np.int64)
        else:
            cls = model.predict(x).astype(np.int64)
        budget = None
        if method == "exact":
            inter, phi, v0, fx = exact_values(model, flat, cls, bg_flat, pl.owner(), pl.n, output=output)
        else:
            budget = default_budget(pl.n) if n_samples is None else int(n_samples)
            inter, phi, v0, fx = sampled_values(model, flat, cls, bg_flat, pl.owner(), pl.n, budget=budget,
                                                seed=seed, output=output)
        values, _ = player_data(pl, x, data)
    settings = {"players": pl.kind, "n_players": pl.n, "n_samples": budget, "target": requested_class,
                "output": output, "background_rows": len(bg)}
    if pl.kind == "patches":
        settings["patch"] = int(patch) if patch is not None else _players.default_patch(pl.input_shape)
    return InteractionResult(values=inter, shap_values=phi, base_values=v0, model_output=fx, data=values,
                             feature_names=pl.names, class_index=cls,
                             provenance=Provenance(f"shap_interactions.{method}", settings, seed, t[0]),
                             class_names=tuple(model.class_names), output=output)
