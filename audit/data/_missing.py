"""Missing values in tabular data: how the model's pipeline fills them, fitted on training rows only.

`Imputation` is part of a `TabularEncoding`: it holds the strategy and the training rows' numeric
raw columns (with their NaN), from which it rebuilds one fitted scikit-learn imputer
(SimpleImputer, KNNImputer or IterativeImputer, seeded) the first time it is used. Keeping the
training rows, rather than a pickled estimator, makes the encoding JSON-safe and lets new data be
imputed exactly as the training split was. Only numeric raw columns may be missing; the masks of
the columns that had missing training values (scikit-learn's MissingIndicator,
`features="missing-only"`) can be added as 0/1 model inputs named `<column>__missing`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

from audit.errors import AuditInputError
from audit.results import Result

STRATEGIES = ("mean", "median", "most_frequent", "knn", "iterative", "indicator", "drop")
OPTION_KEYS = ("strategy", "indicators", "n_neighbors", "max_iter", "seed")


def check_options(missing: Mapping[str, Any] | None, where: str = "missing") -> dict[str, Any] | None:
    """Validate the `missing={...}` option; returns it with defaults filled, or None."""
    if missing is None:
        return None
    if not isinstance(missing, Mapping):
        raise AuditInputError(f"{where} must be a mapping like {{'strategy': 'median', 'indicators': true}}, "
                              f"got {missing!r}.")
    unknown = sorted(set(missing) - set(OPTION_KEYS))
    if unknown:
        raise AuditInputError(f"{where}: unknown key(s) {unknown}; allowed: {list(OPTION_KEYS)}.")
    strategy = missing.get("strategy")
    if strategy not in STRATEGIES:
        raise AuditInputError(f"{where}.strategy is {strategy!r}; choose one of {list(STRATEGIES)}.")
    indicators = missing.get("indicators", strategy == "indicator")
    if not isinstance(indicators, bool):
        raise AuditInputError(f"{where}.indicators must be true or false, got {indicators!r}.")
    out = {"strategy": strategy, "indicators": indicators or strategy == "indicator",
           "n_neighbors": missing.get("n_neighbors", 5), "max_iter": missing.get("max_iter", 10),
           "seed": missing.get("seed", 0)}
    for key in ("n_neighbors", "max_iter", "seed"):
        v = out[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if key == "seed" else 1):
            raise AuditInputError(f"{where}.{key} must be a positive integer, got {v!r}.")
    return out


def make_imputer(strategy: str, *, n_neighbors: int = 5, max_iter: int = 10, seed: int = 0,
                 posterior: bool = False) -> Any:
    """An unfitted scikit-learn imputer for `strategy` ("indicator" fills with the mean);
    `posterior`: an IterativeImputer that draws each fill from its posterior (`sample_posterior`,
    one draw of a multiple imputation) instead of filling the predicted mean."""
    from sklearn.impute import KNNImputer, SimpleImputer

    if strategy in ("mean", "median", "most_frequent", "indicator"):
        return SimpleImputer(strategy="mean" if strategy == "indicator" else strategy, keep_empty_features=True)
    if strategy == "knn":
        return KNNImputer(n_neighbors=n_neighbors, keep_empty_features=True)
    if strategy == "iterative":
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        return IterativeImputer(max_iter=max_iter, random_state=seed, keep_empty_features=True,
                                sample_posterior=posterior)
    raise AuditInputError(f"imputation strategy {strategy!r} cannot fill values; choose one of "
                          f"{[s for s in STRATEGIES if s != 'drop']}.")


@dataclasses.dataclass(frozen=True, eq=False)
class Imputation(Result):
    """How missing numeric values are filled: `strategy`, fitted on `fit_rows` (the training rows'
    numeric raw columns `numeric`, NaN where missing). `masked` names the columns whose 0/1
    missingness mask is a model input (empty unless indicators are on). `posterior` (iterative
    only): fills are draws from the posterior, one imputation of a multiple imputation."""

    strategy: str
    numeric: tuple[str, ...]
    masked: tuple[str, ...]
    fit_rows: np.ndarray
    n_neighbors: int = 5
    max_iter: int = 10
    seed: int = 0
    posterior: bool = False

    @classmethod
    def fit(cls, numeric_frame, *, strategy: str, indicators: bool, n_neighbors: int = 5,
            max_iter: int = 10, seed: int = 0) -> "Imputation":
        """Fit on the TRAINING rows' numeric columns (a DataFrame with NaN where missing)."""
        from sklearn.impute import MissingIndicator

        values = numeric_frame.to_numpy(dtype=np.float64)
        masked: tuple[str, ...] = ()
        if indicators and np.isnan(values).any():
            found = MissingIndicator(features="missing-only").fit(values).features_
            masked = tuple(str(numeric_frame.columns[j]) for j in found)
        return cls(strategy=strategy, numeric=tuple(str(c) for c in numeric_frame.columns), masked=masked,
                   fit_rows=values, n_neighbors=n_neighbors, max_iter=max_iter, seed=seed)

    def imputer(self) -> Any:
        """The fitted scikit-learn imputer (built from `fit_rows` once, then cached)."""
        cached = self.__dict__.get("_fitted")
        if cached is None:  # fitted on a writable copy: IterativeImputer writes into inputs with no holes
            cached = make_imputer(self.strategy, n_neighbors=self.n_neighbors, max_iter=self.max_iter,
                                  seed=self.seed, posterior=self.posterior).fit(np.array(self.fit_rows))
            object.__setattr__(self, "_fitted", cached)
        return cached

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Numeric raw columns (n, len(numeric)) with NaN -> filled, float64; complete rows unchanged."""
        values = np.asarray(values, dtype=np.float64)
        holes = np.isnan(values)
        if not holes.any():
            return values
        out = values.copy()
        rows = holes.any(axis=1)
        out[rows] = self.imputer().transform(values[rows])
        return out

    def __hash__(self) -> int:
        return hash((self.strategy, self.numeric, self.masked, self.fit_rows.tobytes(),
                     self.n_neighbors, self.max_iter, self.seed, self.posterior))
