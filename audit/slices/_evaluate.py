"""`evaluate(model, data)`: error analysis, the cohorts that the sensitive attributes do not name.

Every conjunction of one to `max_order` raw-column conditions (quantile bins for numeric columns,
levels for categoricals) with at least `min_size` rows of the split is tested for a higher error rate
than the rest of the split (one-sided Fisher exact test), and the p-values are corrected for the
number of cohorts tried (Holm, or Benjamini-Hochberg). Error rates carry Wilson intervals. The search
follows SliceFinder (Chung et al. 2019); unlike an error tree it reports overlapping cohorts, ranked
by how surely they are worse.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from audit.errors import AuditInputError
from audit.intervals import wilson_interval
from audit.results import Finding, Provenance, timer
from audit.slices import _conditions
from audit.slices._report import Cohort, SliceReport
from audit.slices._search import search
from audit.slices._stats import CORRECTIONS, fisher_greater


def _columns(data, rows: np.ndarray, columns: Sequence[str] | None, include_sensitive: bool) -> dict:
    enc = data.encoding
    by_name = {c.name: j for j, c in enumerate(enc.columns)}
    names = list(enc.raw_names) if columns is None else list(columns)
    if not names and not (include_sensitive and data.sensitive):
        raise AuditInputError("slices: `columns` is empty; name at least one raw column, or leave it out for all.")
    unknown = [c for c in names if c not in by_name and c not in data.sensitive]
    if unknown:
        raise AuditInputError(f"slices: {data.name} has no column(s) {unknown}; raw columns are "
                              f"{list(enc.raw_names)}, sensitive attributes {sorted(data.sensitive)}.")
    if include_sensitive:
        names += [s for s in sorted(data.sensitive) if s not in names and s not in by_name]
    out = {}
    for name in names:
        if name in by_name:
            col = enc.columns[by_name[name]]
            values = data.raw[rows, by_name[name]]
            if col.kind == "categorical":
                codes = np.clip(np.rint(values), 0, col.width - 1).astype(int)
                out[name] = ("categorical", np.asarray(col.categories, dtype=object)[codes].astype(str), None)
            else:
                out[name] = ("numeric", values, col.display)
        else:
            values = np.asarray(data.sensitive[name])[rows]
            numeric = values.dtype.kind in "fiu" and len(np.unique(values)) > 10
            out[name] = ("numeric", values.astype(np.float64), lambda v: float(f"{v:.4g}")) if numeric \
                else ("categorical", values.astype(str), None)
    return out


def cohort_rows(data, conditions: Sequence[str], *, split: str = "test", n_bins: int = 4) -> np.ndarray:
    """Boolean mask over the split's rows of a cohort named by its conditions (as in `Cohort.conditions`),
    rebuilt with the bins `evaluate` used (same data and `n_bins`; bins are per column)."""
    rows = data.splits[split]
    conds = _conditions.build(_columns(data, rows, None, True), n_bins=n_bins)
    mask = np.ones(len(rows), bool)
    for text in conditions:
        if text not in conds.texts:
            raise AuditInputError(f"slices: no condition {text!r} on {data.name}'s {split} split with n_bins={n_bins}; "
                                  f"conditions there: {list(conds.texts)}.")
        mask &= conds.masks[:, conds.texts.index(text)]
    return mask


def _message(c: Cohort, *, correction: str, n_tried: int) -> str:
    return (f"{c.name}: error {c.error:.2f} (95% interval {c.error_low:.2f} to {c.error_high:.2f}) on {c.size} "
            f"rows vs {c.rest_error:.2f} on the rest, {c.error_ratio:.1f} times as high "
            f"(p = {c.p_adjusted:.2g} after {correction} correction over {n_tried} cohorts tried)")


def _findings(cohorts: Sequence[Cohort], *, error: float, correction: str, n_tried: int, max_ratio: float,
              alpha: float, n_findings: int) -> tuple[Finding, ...]:
    sig = [c for c in cohorts if c.significant]
    name = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[correction]
    if not sig:
        return (Finding(id="slices.worst_error_ratio", status="pass", title="Cohorts with a higher error",
                        message=(f"No cohort of up to three raw-column conditions has a significantly higher error "
                                 f"than the rest ({n_tried} cohorts tried, {name} correction at {alpha}; error "
                                 f"{error:.2f} on the whole split)."),
                        metric="worst_error_ratio", value=1.0, threshold=max_ratio),)
    worst = sig[0]  # ranked by p-value: the most surely worse cohort
    status = "fail" if worst.error_ratio > max_ratio else "warn"
    out = [Finding(id="slices.worst_error_ratio", status=status, title="Cohort with a higher error",
                   message=(_message(worst, correction=name, n_tried=n_tried)
                            + f"; rule: at most {max_ratio} times the rest's error."),
                   metric="worst_error_ratio", value=worst.error_ratio, threshold=max_ratio)]
    for k, c in enumerate([c for c in sig if c is not worst][:max(n_findings - 1, 0)], start=1):
        out.append(Finding(id=f"slices.cohort:{k}", status="warn", title="Cohort with a higher error",
                           message=_message(c, correction=name, n_tried=n_tried) + "."))
    return tuple(out)


def find_cohorts(conds: _conditions.Conditions, wrong: np.ndarray, *, max_order: int = 3, min_size: int = 30,
                 alpha: float = 0.05, correction: str = "holm", min_ratio: float = 1.0,
                 max_cohorts: int = 50) -> tuple[tuple[Cohort, ...], int]:
    """The pure search behind `evaluate`: cohorts of `conds` ranked (significant first, then by p-value)
    for the per-row errors `wrong`, and how many cohorts were tried."""
    wrong = np.asarray(wrong, bool)
    keys, sizes, errors = search(conds.masks, conds.column, wrong, max_order=max_order, min_size=min_size)
    n, total = len(wrong), int(wrong.sum())
    p = fisher_greater(errors, sizes, total_errors=total, total=n)
    p_adj = CORRECTIONS[correction](p)
    error = errors / np.maximum(sizes, 1)
    rest = (total - errors) / np.maximum(n - sizes, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rest > 0, error / rest, np.where(error > 0, np.inf, 1.0))
    significant = (p_adj < alpha) & (ratio >= min_ratio) & (error > rest)
    order = np.lexsort((-error, p, ~significant))[:max_cohorts]
    low, high = wilson_interval(errors[order], sizes[order])
    cohorts = tuple(Cohort(conditions=tuple(conds.texts[i] for i in keys[o] if i >= 0), size=int(sizes[o]),
                           errors=int(errors[o]), error=float(error[o]), error_low=float(lo),
                           error_high=float(hi), rest_error=float(rest[o]), error_ratio=float(ratio[o]),
                           p_value=float(p[o]), p_adjusted=float(p_adj[o]), significant=bool(significant[o]))
                    for o, lo, hi in zip(order, low, high))
    return cohorts, len(keys)


def evaluate(model, data, *, split: str = "test", columns: Sequence[str] | None = None,
             include_sensitive: bool = False, n_bins: int = 4, max_order: int = 3, min_size: int = 30,
             alpha: float = 0.05, correction: str = "holm", min_ratio: float = 1.0, max_ratio: float = 2.0,
             max_cohorts: int = 50, n_findings: int = 3) -> SliceReport:
    """Cohorts of the split, up to `max_order` raw-column conditions each, where the model errs more.

    `columns` defaults to every raw column (plus the sensitive attributes when `include_sensitive`);
    numeric columns are cut at `n_bins`-quantiles, categoricals by level. A cohort needs `min_size`
    rows (and so does the rest); it is significant when its corrected p-value is below `alpha` and
    its error is at least `min_ratio` times the rest's. The worst significant cohort fails the
    finding above `max_ratio` times the rest's error (warns below); the worst is the most surely
    worse (smallest corrected p-value). Up to `max_cohorts` cohorts are
    kept, significant ones first, ranked by p-value; `n_findings` of them become findings.
    """
    with timer() as t:
        model.check_data(data)
        if data.kind != "tabular" or data.encoding is None or data.raw is None:
            raise AuditInputError(f"slices applies to tabular data with raw columns; {data.name!r} is "
                                  f"{data.kind} data{'' if data.kind != 'tabular' else ' without an encoding'}.")
        if split not in data.splits or len(data.splits[split]) == 0:
            raise AuditInputError(f"{data.name}: no rows in split {split!r}; have "
                                  f"{ {k: len(v) for k, v in data.splits.items()} }.")
        if correction not in CORRECTIONS:
            raise AuditInputError(f"slices: correction must be one of {sorted(CORRECTIONS)}, got {correction!r}.")
        if not (isinstance(n_bins, int) and n_bins >= 2 and isinstance(max_order, int) and 1 <= max_order <= 3
                and isinstance(min_size, int) and min_size >= 1 and 0 < alpha < 1 and min_ratio >= 1
                and max_ratio >= 1 and isinstance(max_cohorts, int) and max_cohorts >= 1
                and isinstance(n_findings, int) and n_findings >= 0):
            raise AuditInputError("slices: n_bins must be an integer >= 2, max_order 1, 2 or 3, min_size, "
                                  "max_cohorts positive integers, n_findings >= 0, alpha in (0, 1), and "
                                  "min_ratio, max_ratio >= 1.")
        rows = data.splits[split]
        wrong = np.asarray(model.predict(data.X[rows])) != data.y[rows]
        conds = _conditions.build(_columns(data, rows, columns, include_sensitive), n_bins=n_bins)
        cohorts, n_tried = find_cohorts(conds, wrong, max_order=max_order, min_size=min_size, alpha=alpha,
                                        correction=correction, min_ratio=min_ratio, max_cohorts=max_cohorts)
        n, total = len(rows), int(wrong.sum())
        findings = _findings(cohorts, error=total / n, correction=correction, n_tried=n_tried,
                             max_ratio=max_ratio, alpha=alpha, n_findings=n_findings)
    settings = {"columns": list(conds.names), "include_sensitive": include_sensitive, "n_bins": n_bins,
                "max_order": max_order, "min_size": min_size, "alpha": alpha, "correction": correction,
                "min_ratio": min_ratio, "max_ratio": max_ratio, "max_cohorts": max_cohorts,
                "n_findings": n_findings}
    return SliceReport(split=split, n_rows=n, error=total / n, columns=conds.names, n_tried=n_tried,
                       alpha=alpha, correction=correction, cohorts=cohorts, findings=findings,
                       provenance=Provenance(method="slices.evaluate", settings=settings, seed=None,
                                             seconds=t[0]))
