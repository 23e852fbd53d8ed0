"""The correlation benchmark's statistics: τ and ρ, and the bootstrap interval of τ."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import kendalltau

from teg_plugin.benchmarks.correlation import correlation


def _noisy(n: int, noise: float, seed: int) -> tuple[list[float], list[float]]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=n)
    return list(truth + noise * rng.normal(size=n)), list(truth)


def test_point_estimates_match_scipy_and_drop_nan_pairs() -> None:
    predicted, truth = _noisy(50, 1.0, 0)
    row = correlation([*predicted, math.nan], [*truth, 1.0], "p")
    assert row.n == 50
    assert row.kendall == kendalltau(predicted, truth)[0]
    assert all(math.isnan(bound) for bound in row.kendall_ci)  # not asked for


def test_bootstrap_interval_brackets_tau_narrows_with_n_and_is_seeded() -> None:
    small = correlation(*_noisy(60, 1.0, 1), "p", bootstrap=400, seed=3)
    large = correlation(*_noisy(600, 1.0, 1), "p", bootstrap=400, seed=3)
    for row in (small, large):
        lo, hi = row.kendall_ci
        assert lo < row.kendall < hi
    assert large.kendall_ci[1] - large.kendall_ci[0] < 0.6 * (small.kendall_ci[1] - small.kendall_ci[0])
    assert correlation(*_noisy(60, 1.0, 1), "p", bootstrap=400, seed=3) == small
    assert correlation(*_noisy(60, 1.0, 1), "p", bootstrap=400, seed=4).kendall_ci != small.kendall_ci


def test_constant_predictor_has_no_interval() -> None:
    row = correlation([1.0] * 20, list(range(20)), "constant", bootstrap=100)
    assert math.isnan(row.kendall) and all(math.isnan(bound) for bound in row.kendall_ci)


def test_too_few_pairs_get_no_interval() -> None:
    # Three pairs: a percentile bootstrap gave [0.45, 1.0] around tau = 0.333 before.
    row = correlation([1.0, 3.0, 2.0], [1.0, 2.0, 3.0], "tiny", bootstrap=100)
    assert row.kendall == kendalltau([1.0, 3.0, 2.0], [1.0, 2.0, 3.0])[0]
    assert all(math.isnan(bound) for bound in row.kendall_ci)
    lo, hi = correlation(*_noisy(10, 1.0, 2), "ten", bootstrap=100).kendall_ci
    assert lo <= hi  # from ten pairs on, an interval is given
