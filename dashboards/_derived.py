"""Numbers the pages derive from saved results and the audited data, without calling the model:
certified accuracy at any eps (smoothing radii) and per sensitive group (the certified rows are
the robustness sample, re-drawn with the same seed)."""

from __future__ import annotations

import numpy as np

from audit.slices import wilson_interval

MIN_GROUP_SIZE = 30  # the fairness default: smaller groups are too small to judge


def smoothing_certified(result, eps) -> np.ndarray:
    """Certified accuracy of the smoothed classifier at each linf/L2 `eps` (the saved radii;
    the same rule as `SmoothingCertificate.certified`)."""
    eps = np.atleast_1d(np.asarray(eps, np.float64))
    ok = (result.smoothing_prediction == result.labels) & (result.smoothing_prediction >= 0)
    radius = np.where(ok, result.smoothing_radius, -np.inf)
    return (radius[None, :] >= eps[:, None] * result.radius_scale).mean(axis=1)


def certified_rows(result, data) -> np.ndarray | None:
    """Indices (into `data`) of the rows `certify` sampled, or None when the data re-created from
    the config do not give the saved labels (then per-group numbers would be wrong)."""
    from audit.robustness._evaluate import sample_rows

    settings = result.provenance.settings
    split = settings.get("split", "test")
    part = np.asarray(data.splits.get(split, np.arange(len(data))))
    rows = part[sample_rows(len(part), int(settings.get("n", result.n)), seed=int(result.provenance.seed))]
    if len(rows) != len(result.labels) or not np.array_equal(np.asarray(data.y)[rows], result.labels):
        return None
    return rows


def certified_by_group(result, data, attribute: str, j: int, *, min_group_size: int = MIN_GROUP_SIZE,
                       edges=None, n_bins: int = 4) -> list[dict] | None:
    """Per group of `attribute`: rows, and for each certificate method the certified accuracy at
    the audit's eps `result.eps[j]` with a 95% Wilson interval (None for groups under
    `min_group_size`: too small to judge). None when the certified rows cannot be re-drawn."""
    from audit.data import attribute_groups

    rows = certified_rows(result, data)
    if rows is None:
        return None
    grouping = attribute_groups(data, attribute, rows, edges=edges, n_bins=n_bins)
    hits = {}
    if "ibp" in result.methods and result.ibp_margin.size:
        hits["ibp"] = result.ibp_margin[j] > 0
    if "smoothing" in result.methods and result.smoothing_radius.size:
        ok = (result.smoothing_prediction == result.labels) & (result.smoothing_prediction >= 0)
        hits["smoothing"] = ok & (result.smoothing_radius >= result.eps[j] * result.radius_scale)
    sizes = np.bincount(grouping.codes, minlength=len(grouping.labels))
    out = []
    for method, hit in hits.items():
        k = np.bincount(grouping.codes, weights=hit.astype(np.float64), minlength=len(grouping.labels))
        low, high = wilson_interval(k.astype(np.int64), sizes)
        for g, label in enumerate(grouping.labels):
            judged = sizes[g] >= min_group_size
            out.append({"group": label, "method": method, "rows": int(sizes[g]),
                        "certified accuracy": float(k[g] / sizes[g]) if judged and sizes[g] else None,
                        "low": float(low[g]) if judged else None, "high": float(high[g]) if judged else None,
                        "too small to judge": not judged})
    return out
