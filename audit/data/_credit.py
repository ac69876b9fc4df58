"""Synthetic credit-default data with planted, documented properties.

Every row is an applicant; the label is whether the loan defaulted (the minority class, ~10%).
The generating process is fixed by a seed, so the planted truths below are facts that tests
and analyzers can check:

- The label depends only on ``IMPORTANT`` columns; on the logit: ``late_payments`` +2.2 each,
  ``debt_ratio`` +10 per unit, ``income`` -2.5 per standard deviation of its log,
  ``credit_history_years`` -1.5 per 5 years, ``employment`` (``unemployed`` +3.5,
  ``self_employed`` +1.2). The Bayes-optimal accuracy is about 0.95 (majority rate 0.90).
- ``BIAS``: on top of that, women are labelled as defaulters more often (+1.5 on the logit):
  historical label bias against ``sex == "female"``.
  This constant shift makes women denied more often, but it does NOT make a denied woman need a
  clearly larger change than a denied man: it moves the decision threshold within the upper tail
  of the risk, and the part of the risk beyond the threshold is distributed about alike in both
  groups (zoo MLP fed sex, 8,000 rows, ``audit.recourse.evaluate`` on the training split: mean
  cheapest-counterfactual cost 0.88 for 259 denied women vs 0.81 for 140 men, ratio 1.09,
  interval [0.94, 1.29]). Here the bias shows
  as more denials, not as a clearly higher recourse burden.
- ``RECOURSE_BIAS`` (only with ``recourse_bias=True``; off by default, which leaves every row as
  above): women aged 50 or over are labelled defaulters far more often still (+3.0 more on the
  logit, added after the intercept is fixed, so every other row keeps its label). It pushes these
  women deep past the threshold rather than just over it, so the women a model denies need more
  change to be approved: the planted truth for ``audit.recourse``'s burden ratio (same model and
  analyzer: 433 women denied at mean cost 1.08 vs 145 men at 0.80, ratio 1.36, interval [1.19,
  1.57]). ``label_bias=False`` removes ``BIAS`` too, for data without either bias (ratio 1.10 for
  men, interval [0.91, 1.28]: no clear gap).
- ``PROXY``: ``sector`` has no effect on the label, but its distribution depends strongly on sex,
  so a model that never sees ``sex`` can still learn the bias through it.
- ``IRRELEVANT`` columns (``housing``, ``purpose``, ``n_dependents``, ``loan_amount``) are
  independent noise.
- ``sex`` and ``age`` are sensitive attributes, kept out of the model inputs by default.
- ``HIDDEN_COHORT`` (only with ``hidden_cohort=True``; off by default, which leaves every row as
  above): applicants with ``sector == "retail"`` and ``housing == "rent"`` (about 7% of rows) get
  label noise, their label flipped with probability 0.4, so any model errs on roughly 40% of them
  against about 6% elsewhere. Neither column affects the label otherwise and no sensitive attribute
  names this cohort: it is the planted truth for error analysis (``audit.slices``), which should
  rank it first.
- ``MISSING`` (only with ``missing="mnar"`` or ``"mcar"``; the default has no missing values):
  ``income`` is blanked AFTER the label is drawn, so the label's dependence on income is unchanged.
  ``"mnar"`` (missing not at random): the chance that income is missing is 5% for men who repay,
  x5 for women (25%) and x4 for defaulters (20%; women who default 60%), so missingness is
  unequal across ``sex`` (worse for ``female``) and informative of ``default``.
  ``"mcar"`` (missing completely at random): every income is missing with the same chance, the
  overall rate of the MNAR option on the same rows, independent of sex and of the label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IMPORTANT = ("late_payments", "debt_ratio", "income", "credit_history_years", "employment")
IRRELEVANT = ("housing", "purpose", "n_dependents", "loan_amount")
PROXY = "sector"
SENSITIVE = ("sex", "age")
BIAS = {"attribute": "sex", "group": "female", "logit_shift": 1.5}
RECOURSE_BIAS = {"attribute": "sex", "group": "female", "min_age": 50, "logit_shift": 3.0}
POSITIVE_RATE = 0.10
CATEGORICAL = ("employment", "housing", "purpose", "sector")
HIDDEN_COHORT = {"sector": "retail", "housing": "rent", "flip_probability": 0.4}
MISSING = {"column": "income", "base": 0.05, "group": ("sex", "female", 5.0), "label_factor": 4.0}

_SECTORS = ("care", "education", "retail", "construction", "engineering", "transport")
_SECTOR_P = {"female": (0.32, 0.25, 0.2, 0.05, 0.08, 0.10), "male": (0.05, 0.08, 0.17, 0.3, 0.22, 0.18)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def hidden_cohort_mask(frame: pd.DataFrame) -> np.ndarray:
    """Rows of a credit table in the planted `HIDDEN_COHORT` (whether or not its noise was added)."""
    return ((frame["sector"] == HIDDEN_COHORT["sector"])
            & (frame["housing"] == HIDDEN_COHORT["housing"])).to_numpy()


def missing_probability(sex: np.ndarray, default: np.ndarray) -> np.ndarray:
    """The MNAR chance that income is missing: `base` x 5 for women x 4 for defaulters (capped at 0.95)."""
    p = MISSING["base"] * np.where(sex == MISSING["group"][1], MISSING["group"][2], 1.0)
    return np.minimum(0.95, p * np.where(default, MISSING["label_factor"], 1.0))


def credit_frame(n: int = 20_000, *, seed: int = 0, hidden_cohort: bool = False,
                 missing: str | None = None, label_bias: bool = True,
                 recourse_bias: bool = False) -> pd.DataFrame:
    """The raw credit table: `n` applicants with a `default` column ("yes"/"no").

    `hidden_cohort=True` flips labels in the planted `HIDDEN_COHORT` and `missing` ("mnar" or
    "mcar") blanks some incomes, as the module docstring states; each is drawn from its own random
    stream, so every other row and label is the same as without. `label_bias=False` drops the
    `BIAS` shift and `recourse_bias=True` plants `RECOURSE_BIAS`; either changes the labels (the
    intercept is re-solved for the same default rate), never the features."""
    if missing not in (None, "mnar", "mcar"):
        from audit.errors import AuditInputError

        raise AuditInputError(f"credit option missing={missing!r} must be 'mnar', 'mcar' or None.")
    for name, value in (("label_bias", label_bias), ("recourse_bias", recourse_bias)):
        if not isinstance(value, (bool, np.bool_)):
            from audit.errors import AuditInputError

            raise AuditInputError(f"credit option {name}={value!r} must be true or false.")
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], size=n)
    age = rng.integers(21, 76, size=n)
    income = np.round(np.exp(rng.normal(10.6, 0.45, size=n)), -1)
    debt_ratio = np.round(rng.beta(2.0, 5.0, size=n), 3)
    history = np.round(np.minimum(age - 18, rng.gamma(3.0, 3.5, size=n)), 1)
    late = rng.poisson(0.6, size=n)
    loan = np.round(np.exp(rng.normal(9.5, 0.7, size=n)), -1)
    employment = rng.choice(["salaried", "self_employed", "unemployed", "retired"], size=n,
                            p=[0.6, 0.2, 0.08, 0.12])
    housing = rng.choice(["own", "rent", "mortgage"], size=n, p=[0.3, 0.4, 0.3])
    purpose = rng.choice(["car", "home", "education", "business", "other"], size=n)
    dependents = rng.poisson(1.0, size=n)
    sector = np.where(sex == "female",
                      rng.choice(_SECTORS, size=n, p=_SECTOR_P["female"]),
                      rng.choice(_SECTORS, size=n, p=_SECTOR_P["male"]))

    log_income = np.log(income)
    deep = recourse_bias & (sex == RECOURSE_BIAS["group"]) & (age >= RECOURSE_BIAS["min_age"])
    logit = (2.2 * late + 10.0 * (debt_ratio - 0.28)
             - 2.5 * (log_income - 10.6) / 0.45 - 1.5 * (history - 9.0) / 5.0
             + 3.5 * (employment == "unemployed") + 1.2 * (employment == "self_employed")
             + BIAS["logit_shift"] * label_bias * (sex == BIAS["group"]))
    lo, hi = -20.0, 20.0  # intercept so that the expected default rate is POSITIVE_RATE
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _sigmoid(logit + mid).mean() < POSITIVE_RATE else (lo, mid)
    # the recourse bias comes on top of the intercept: every other row keeps its label
    default = rng.random(n) < _sigmoid(logit + (lo + hi) / 2 + RECOURSE_BIAS["logit_shift"] * deep)
    if hidden_cohort:
        noise = np.random.default_rng([seed, 21]).random(n) < HIDDEN_COHORT["flip_probability"]
        cohort = (sector == HIDDEN_COHORT["sector"]) & (housing == HIDDEN_COHORT["housing"])
        default = np.where(cohort & noise, ~default, default)
    if missing is not None:  # drawn from its own stream: the rows are the same with or without it
        planted = np.random.default_rng([seed, 15])
        p = missing_probability(sex, default)
        if missing == "mcar":
            p = np.full(n, p.mean())
        income = np.where(planted.random(n) < p, np.nan, income)
    return pd.DataFrame({
        "age": age, "sex": sex, "income": income, "debt_ratio": debt_ratio,
        "credit_history_years": history, "late_payments": late, "loan_amount": loan,
        "employment": employment, "housing": housing, "purpose": purpose,
        "n_dependents": dependents, "sector": sector,
        "default": np.where(default, "yes", "no"),
    })
