"""Live what-ifs: thin, cached calls of the public analyzer functions on the audited model.

Nothing here analyses on its own: attacks come from `audit.robustness.ATTACKS`, group
metrics from `audit.fairness.assess`, binary operating points by counting sorted scores,
explanations from `audit.explain`. Models and data are passed with a leading underscore (not
hashed by Streamlit) next to a `key` built from their fingerprints, which is hashed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

ATTACK_SETTINGS = {"steps": 20, "restarts": 1, "apgd_steps": 20, "square_queries": 300}


_MEMO: dict[tuple, tuple] = {}  # (what, ids) -> (the objects, value): objects held, so ids stay theirs


def _memo(what: str, objects: tuple, make):
    """`make()` once per identical objects (the model and data are cached resources, the same
    objects on every rerun): hashing a 100k-row data set or copying its test split on each rerun
    was most of a what-if's time there."""
    ident = (what, *map(id, objects))
    hit = _MEMO.get(ident)
    if hit is None or any(a is not b for a, b in zip(hit[0], objects)):
        if len(_MEMO) >= 32:
            _MEMO.pop(next(iter(_MEMO)))
        hit = _MEMO[ident] = (objects, make())
    return hit[1]


def key_of(model, data) -> str:
    """Cache key for a (model, data) pair: their fingerprints (computed once per pair of objects)."""
    return _memo("key", (model, data), lambda: f"{model.fingerprint()}:{data.fingerprint()}")


def split_of(data, split: str = "test"):
    """`split`'s rows as a Dataset (the whole data when it has no such split), made once per data."""
    return _memo(f"split:{split}", (data,),
                 lambda: data.part(split) if len(data.splits.get(split, ())) else data)


@st.cache_data(max_entries=8, show_spinner=False)
def probabilities(_model, _data, key: str, split: str = "test") -> np.ndarray:
    """Class probabilities of every row of `split` (one batched, jitted pass)."""
    return np.asarray(_model.predict_proba(split_of(_data, split).X), np.float64)


def thresholded(proba: np.ndarray, threshold: float) -> np.ndarray:
    """Binary decisions: class 1 when its probability reaches `threshold`."""
    return (proba[:, 1] >= threshold).astype(np.int64)


# ---- robustness ----------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def _domain(_data, key: str):
    from audit.robustness import domain_for

    return domain_for(_data)


@st.cache_data(max_entries=64, show_spinner=False)
def attack_example(_model, _data, key: str, row: int, attack: str, eps: float, norm: str,
                   seed: int = 0) -> dict[str, Any]:
    """Attack test row `row` with `attack` at `eps`: the original and adversarial inputs and
    both class-probability vectors."""
    import jax

    from audit.robustness import ATTACKS

    test = split_of(_data)
    x, y = test.X[row:row + 1], test.y[row:row + 1].astype(np.int32)
    spec = ATTACKS[attack]
    adv = np.asarray(spec.run(_model.apply, _model.params, x, y, eps=float(eps), norm=norm,
                              domain=_domain(_data, key), key=jax.random.key(seed), settings=ATTACK_SETTINGS))
    proba = _model.predict_proba(np.concatenate([x, adv]))
    return {"original": x[0], "adversarial": adv[0], "label": int(y[0]), "clean": proba[0], "attacked": proba[1]}


def attack_choices(model, data, norm: str) -> list[str]:
    from audit.robustness import ATTACKS

    return [name for name, s in ATTACKS.items() if norm in s.norms and data.n_classes >= s.min_classes
            and (model.differentiable or not s.needs_gradients)]


# ---- fairness ----------------------------------------------------------------------------
def grouping(data, attribute: str, *, split: str = "test", settings: dict | None = None):
    """The groups of `attribute` ("sex" or an intersection "sex&age") on `split`'s rows, binned
    as the report's fairness settings say (the data layer's one grouping rule)."""
    from audit.data import attribute_groups

    settings = settings or {}
    rows = data.splits.get(split, np.arange(len(data)))
    return attribute_groups(data, attribute, rows, edges=dict(settings.get("bins") or {}),
                            n_bins=int(settings.get("n_bins", 4)))


@st.cache_data(max_entries=64, show_spinner=False)
def fairness_at(_model, _data, key: str, attribute: str, threshold: float, settings_json: str,
                n_bootstrap: int = 200, seed: int = 0):
    """`audit.fairness.assess` of the decisions at `threshold` (binary models) for `attribute`,
    and the accuracy at that threshold."""
    import json

    from audit.fairness import assess

    settings = json.loads(settings_json)
    proba = probabilities(_model, _data, key)
    y = split_of(_data).y
    pred = thresholded(proba, threshold)
    result = assess(y, pred, grouping(_data, attribute, settings=settings), scores=proba,
                    class_names=_model.class_names, name=attribute, n_bootstrap=n_bootstrap, seed=seed,
                    min_group_size=int(settings.get("min_group_size", 30)),
                    min_count=int(settings.get("min_count", 10)))
    return result, float((pred == y).mean())


@st.cache_data(max_entries=16, show_spinner=False)
def fairness_sweep(_model, _data, key: str, attribute: str, settings_json: str,
                   thresholds: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Accuracy and the difference-type disparities at each threshold (no bootstrap)."""
    rows: dict[str, list[float]] = {"threshold": list(thresholds), "accuracy": []}
    for t in thresholds:
        result, acc = fairness_at(_model, _data, key, attribute, float(t), settings_json, n_bootstrap=0)
        rows["accuracy"].append(acc)
        for d in result.disparities:
            if d.kind == "difference":
                rows.setdefault(d.name, []).append(d.value)
    return {k: np.asarray(v, np.float64) for k, v in rows.items()}


# ---- imbalance ---------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner=False)
def _sorted_scores(_model, _data, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Class-1 probabilities of the test rows of class 0 and of class 1, each sorted (binary models)."""
    proba = probabilities(_model, _data, key)
    y = split_of(_data).y
    return np.sort(proba[y == 0, 1]), np.sort(proba[y == 1, 1])


def binary_at(_model, _data, key: str, threshold: float) -> dict[str, Any]:
    """Precision, recall, false positive rate, balanced accuracy and the confusion matrix of the
    decisions "class 1 when P(class 1) >= threshold" (scikit-learn's definitions, zero_division=0),
    from counts found by binary search in the sorted scores: any threshold answers at once."""
    negatives, positives = _sorted_scores(_model, _data, key)
    fp = len(negatives) - int(np.searchsorted(negatives, threshold, side="left"))
    tp = len(positives) - int(np.searchsorted(positives, threshold, side="left"))
    tn, fn = len(negatives) - fp, len(positives) - tp
    recall = tp / len(positives) if len(positives) else float("nan")
    specificity = tn / len(negatives) if len(negatives) else float("nan")
    present = [r for r in (recall, specificity) if r == r]
    return {"precision": tp / (tp + fp) if tp + fp else 0.0, "recall": recall,
            "fpr": fp / len(negatives) if len(negatives) else float("nan"),
            "balanced_accuracy": float(np.mean(present)) if present else float("nan"),
            "confusion": np.array([[tn, fp], [fn, tp]], np.int64)}


# ---- explanations ------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner=False)
def _background(_data, key: str, size: int = 50, seed: int = 0):
    from audit.explain import background

    return background(_data, size=size, seed=seed)


@st.cache_data(max_entries=64, show_spinner=False)
def shap_example(_model, _data, key: str, row: int, seed: int = 0):
    """SHAP values (ShapResult) of test row `row`: exact over raw columns for tabular data,
    expected gradients per pixel for images (as the audit's explain section)."""
    from audit.explain import compute_shap

    x = split_of(_data).X[row:row + 1]
    kw = {} if _data.kind == "tabular" else {"method": "gradient", "players": "inputs"}
    cls = None if _model.n_classes == 2 else int(_model.predict(x)[0])
    return compute_shap(_model, x, _background(_data, key), data=_data, seed=seed, target=cls, **kw)


@st.cache_data(max_entries=4, show_spinner=False)
def shap_global(_model, _data, key: str, n: int = 200, seed: int = 0):
    """SHAP values of a seeded sample of `n` test rows (tabular), for beeswarm and bar plots."""
    from audit.explain import compute_shap

    test = split_of(_data)
    rows = np.sort(np.random.default_rng(seed).choice(len(test), size=min(n, len(test)), replace=False))
    return compute_shap(_model, test.X[rows], _background(_data, key), data=_data, seed=seed)


def local_methods(model, data) -> list[str]:
    """Local explanation methods of `audit.explain` for this model (gradient methods need gradients)."""
    gradients = ["gradient", "gradient_x_input", "integrated_gradients", "smoothgrad"] if model.differentiable else []
    return (gradients + ["lime"]) if data.kind == "image" else (["lime"] + gradients)


@st.cache_data(max_entries=64, show_spinner=False)
def attribution_example(_model, _data, key: str, row: int, method: str, seed: int = 0):
    """One local explanation (an `Attribution`) of test row `row` towards the explained class
    (class 1 for two-class models, else the prediction), from `audit.explain`."""
    from audit import explain

    test = split_of(_data)
    x = test.X[row:row + 1]
    target = np.array([1 if _model.n_classes == 2 else int(_model.predict(x)[0])], np.int32)
    tabular = _data.kind == "tabular"
    if method == "lime":
        if tabular:
            raw = test.raw[row:row + 1]
            fn = getattr(explain, "lime_native", None) or explain.lime_tabular
            return fn(_model, _data, raw, target=target, seed=seed)
        return explain.lime_image(_model, x, target=target, seed=seed)
    fn = getattr(explain, method)
    if method == "integrated_gradients" and tabular:
        train = split_of(_data, "train").X
        a = fn(_model, x, target=target, baseline=train.mean(axis=0))
    elif method == "smoothgrad":
        a = fn(_model, x, target=target, seed=seed)
    else:
        a = fn(_model, x, target=target)
    if tabular and a.level == "input":
        a = a.grouped(_data.feature_groups, _data.raw_feature_names)
    return a


@st.cache_data(max_entries=64, show_spinner=False)
def deletion_scores(_model, _data, key: str, row: int, methods: tuple[str, ...], seed: int = 0) -> dict[str, str]:
    """Faithfulness of each method's explanation of test row `row` (image models): the
    deletion AUC from `audit.explain.faithfulness_curves` next to a random order's."""
    from audit.explain import faithfulness_curves

    x = split_of(_data).X[row:row + 1]
    target = np.array([1 if _model.n_classes == 2 else int(_model.predict(x)[0])], np.int32)
    out = {}
    for m in methods:
        values = (shap_example(_model, _data, key, row, seed).input_attributions() if m == "shap"
                  else attribution_example(_model, _data, key, row, m, seed).values)
        c = faithfulness_curves(_model, x, values, target=target, baseline=np.zeros(_model.input_shape, np.float32),
                                seed=seed)
        out[m] = f"deletion AUC {c.deletion_auc[0]:.3f} (random {c.deletion_auc_random[0]:.3f})"
    return out


# ---- counterfactuals -----------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def counterfactual_example(_model, _data, key: str, row: int, immutable: tuple[str, ...],
                           monotone: tuple[tuple[str, str], ...], k: int, seed: int = 0):
    """Up to k counterfactuals for test row `row` toward the other class most likely after its prediction."""
    from audit.explain import counterfactuals

    test = split_of(_data)
    return counterfactuals(_model, _data, test.X[row:row + 1], target="other", k=k, immutable=immutable,
                           monotone=dict(monotone), seed=seed)


# ---- error analysis: cohorts ---------------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def cohort_start(_data, key: str, split: str, conditions: tuple[str, ...], n_bins: int) -> np.ndarray:
    """Mask over `split`'s rows of a cohort the audit found (`audit.slices.cohort_rows`)."""
    from audit.slices import cohort_rows

    if not conditions:
        return np.ones(len(split_of(_data, split).y), bool)
    return cohort_rows(_data, list(conditions), split=split, n_bins=n_bins)


@st.cache_resource(max_entries=8, show_spinner=False)
def cohort_groupings(_data, key: str, split: str, settings_json: str) -> dict:
    """Each sensitive attribute's groups on `split`'s rows, binned as the fairness section did."""
    import json

    settings = json.loads(settings_json)
    return {a: grouping(_data, a, split=split, settings=settings) for a in sorted(_data.sensitive)}


@st.cache_data(max_entries=128, show_spinner=False)
def cohort(_model, _data, key: str, split: str, start: tuple[str, ...], n_bins: int,
           filters: tuple[tuple, ...], settings_json: str) -> dict[str, Any]:
    """Every metric of `dashboards._cohort.cohort_metrics` on the rows of the found cohort `start`
    (empty: the whole split) narrowed by `filters` ((column, levels, low, high) each)."""
    import json

    from dashboards._cohort import Filter, cohort_metrics, filter_mask

    rows = split_of(_data, split)
    settings = json.loads(settings_json)
    mask = cohort_start(_data, key, split, start, n_bins) & filter_mask(
        rows.raw, rows.encoding, [Filter(c, levels, low, high) for c, levels, low, high in filters])
    return cohort_metrics(rows.y, probabilities(_model, _data, key, split), mask, class_names=rows.class_names,
                          groupings=cohort_groupings(_data, key, split, settings_json),
                          min_group_size=int(settings.get("min_group_size", 30)),
                          min_count=int(settings.get("min_count", 10)))
