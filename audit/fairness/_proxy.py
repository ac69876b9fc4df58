"""Proxy analysis: which inputs carry a sensitive attribute, and how much the model uses it.

- Mutual information between each raw input column and the attribute's groups
  (scikit-learn's `mutual_info_classif`: exact plug-in estimate for categorical columns,
  Kraskov et al. 2004 nearest-neighbour estimate for numeric ones), also divided by the
  attribute's entropy so that 1 means "the column determines the group".
- A probe: logistic regression fitted on the training rows' model inputs to predict the group,
  scored by ROC-AUC on the audited rows (0.5: the inputs carry no trace of the attribute).
- When the attribute is itself a model input: its share of the model's attributions, either
  permutation importance (Breiman 2001; Fisher et al. 2019: the mean total-variation change of
  the predicted class distribution when that raw column is shuffled across rows; the default,
  fast) or mean |SHAP value| per raw column (Lundberg & Lee 2017, via `audit.explain`).
"""

from __future__ import annotations

import numpy as np

from audit.data._groups import Grouping
from audit.fairness._report import ProxyResult


def _entropy(codes: np.ndarray) -> float:
    p = np.bincount(codes) / len(codes)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _probe_auc(X_fit, s_fit, X_eval, s_eval, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    fit_groups, eval_groups = np.unique(s_fit), np.unique(s_eval)
    if len(fit_groups) < 2 or len(eval_groups) < 2 or not set(eval_groups) <= set(fit_groups):
        return float("nan")
    probe = LogisticRegression(max_iter=2000, random_state=seed).fit(X_fit, s_fit)
    proba = probe.predict_proba(X_eval)
    if len(fit_groups) == 2:
        return float(roc_auc_score(s_eval == probe.classes_[1], proba[:, 1]))
    if len(eval_groups) < len(fit_groups):
        return float("nan")
    return float(roc_auc_score(s_eval, proba, multi_class="ovr", labels=probe.classes_))


def permutation_importance(model, data, *, seed: int, n_repeats: int = 3, max_rows: int = 2000) -> np.ndarray:
    """Per raw column: mean total-variation change of the predicted class distribution when the
    column is shuffled across rows (all columns and repeats evaluated in one batched call)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(data)) if len(data) <= max_rows else np.sort(rng.choice(len(data), max_rows, replace=False))
    raw = data.raw[rows]
    n, m = raw.shape
    stacked = np.repeat(raw[None], m * n_repeats, axis=0)  # (m * n_repeats, n, m)
    for j in range(m):  # loop over columns, not rows: each fills one slab with a shuffled column
        for r in range(n_repeats):
            stacked[j * n_repeats + r, :, j] = raw[rng.permutation(n), j]
    base = model.predict_proba(data.X[rows])
    shuffled = model.predict_proba(data.encoding.encode(stacked.reshape(-1, m))).reshape(m, n_repeats, n, -1)
    return 0.5 * np.abs(shuffled - base[None, None]).sum(-1).mean(axis=(1, 2))


def shap_importance(model, data, fit_rows: np.ndarray, eval_rows: np.ndarray, *, seed: int,
                    max_rows: int = 200, background: int = 50) -> np.ndarray:
    """Per raw column: mean |SHAP value| (audit.explain.compute_shap, one player per raw column;
    the values only, so the shap library is not imported for a shap.Explanation nobody reads)."""
    from audit.explain import compute_shap

    rng = np.random.default_rng(seed)
    rows = eval_rows if len(eval_rows) <= max_rows else np.sort(rng.choice(eval_rows, max_rows, replace=False))
    bg = fit_rows if len(fit_rows) <= background else np.sort(rng.choice(fit_rows, background, replace=False))
    result = compute_shap(model, data.X[rows], data.X[bg], method="auto", seed=seed, data=data)
    return np.abs(np.asarray(result.values)).mean(axis=0)


def proxies(model, data, fit_rows: np.ndarray, eval_rows: np.ndarray, grouping_fit: Grouping,
            grouping_eval: Grouping, *, seed: int, attribution: str = "permutation",
            memo: dict | None = None) -> ProxyResult:
    """Proxy analysis of one attribute (tabular data with an encoding). The model's attribution
    per raw column does not depend on the attribute: pass one `memo` dict to the calls for
    several attributes on the same rows and it is computed once."""
    from sklearn.feature_selection import mutual_info_classif

    names = data.raw_feature_names
    keep = [j for j, n in enumerate(names) if n != grouping_eval.name]  # the attribute is no proxy of itself
    inputs = [i for j in keep for i in data.encoding.groups[j]]
    raw_eval = data.raw[eval_rows][:, keep]
    discrete = np.array([data.encoding.columns[j].kind == "categorical" for j in keep])
    s_eval = np.asarray(grouping_eval.labels)[grouping_eval.codes]
    s_fit = np.asarray(grouping_fit.labels)[grouping_fit.codes]
    mi = mutual_info_classif(raw_eval, grouping_eval.codes, discrete_features=discrete,
                             random_state=seed)
    h = _entropy(grouping_eval.codes)
    nmi = np.clip(mi / h, 0.0, 1.0) if h > 0 else np.zeros_like(mi)
    auc = _probe_auc(data.X[fit_rows][:, inputs], s_fit, data.X[eval_rows][:, inputs], s_eval, seed)
    share = method = None
    if grouping_eval.name in names:
        memo = {} if memo is None else memo
        if attribution not in memo:
            if attribution == "shap":
                memo[attribution] = shap_importance(model, data, fit_rows, eval_rows, seed=seed)
            else:
                memo[attribution] = permutation_importance(model, data.select(eval_rows), seed=seed)
        imp = memo[attribution]
        method = ("shap (mean |SHAP value| per raw column, audit.explain.shap_values)" if attribution == "shap"
                  else "permutation (total-variation change of predicted probabilities)")
        total = imp.sum()
        share = float(imp[names.index(grouping_eval.name)] / total) if total > 0 else 0.0
    return ProxyResult(attribute=grouping_eval.name, columns=tuple(names[j] for j in keep),
                       mutual_information=mi,
                       normalized_mi=nmi, probe_auc=auc, attribution_share=share,
                       attribution_method=method)
