import numpy as np
from scipy.stats import binomtest

from audit import missing, slices
from audit.intervals import wilson_interval


def test_wilson_matches_scipy_at_the_edges_and_is_nan_without_trials():
    k = np.array([0, 1, 5, 7, 20, 0])
    n = np.array([7, 1, 9, 7, 400, 0])
    lo, hi = wilson_interval(k, n, confidence=0.9)
    for i in range(len(k) - 1):
        ci = binomtest(int(k[i]), int(n[i])).proportion_ci(confidence_level=0.9, method="wilson")
        assert np.isclose(lo[i], ci.low, atol=1e-12) and np.isclose(hi[i], ci.high, atol=1e-12)
    assert np.isnan(lo[-1]) and np.isnan(hi[-1])
    assert slices.wilson_interval is wilson_interval and missing.wilson is wilson_interval  # one owner
