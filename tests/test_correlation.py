"""The correlation benchmark's statistics: τ and ρ, the bootstrap interval of τ, and the top-end measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import kendalltau

from teg_plugin.benchmarks.correlation import correlation, top_count, top_truth


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


def test_top_count_is_the_ceiling_of_the_fraction_and_refuses_bad_fractions() -> None:
    assert top_count(500, 0.1) == 50 and top_count(100, 0.07) == 7 and top_count(95, 0.1) == 10
    assert top_count(3, 0.01) == 1 and top_count(8, 1.0) == 8
    for bad in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"top must be a fraction in \(0, 1\], got"):
            top_count(10, bad)


def test_kendall_top_is_tau_among_the_most_accurate_with_ties_at_the_cut_included() -> None:
    predicted, truth = _noisy(40, 1.0, 5)
    truth[7] = sorted(truth, reverse=True)[3]  # ties the 4th best: top 10% of 40 is then 5 archs
    predicted[0] = math.nan  # no prediction: left out, wherever its truth lies
    row = correlation(predicted, truth, "p", top=0.1)
    cut = sorted(truth, reverse=True)[3]
    best = [i for i in range(40) if truth[i] >= cut and not math.isnan(predicted[i])]
    assert row.n_top == len(best) >= 5
    assert row.kendall_top == kendalltau([predicted[i] for i in best], [truth[i] for i in best])[0]
    assert row.n == 39 and row.kendall == kendalltau(predicted[1:], truth[1:])[0]  # the global τ is unchanged


def test_top_accuracy_is_the_mean_truth_of_the_predicted_best() -> None:
    truth = [float(t) for t in range(20)]  # top 25%: 5 archs; the ceiling is mean(15..19) = 17
    assert correlation(truth, truth, "perfect", top=0.25).top_accuracy == 17.0
    assert correlation([-t for t in truth], truth, "reversed", top=0.25).top_accuracy == 2.0
    # A constant predictor ties everything at the cut: a random tie-break's mean, the sample mean.
    assert correlation([1.0] * 20, truth, "constant", top=0.25).top_accuracy == pytest.approx(9.5)
    # Ties across the cut share its places: 15..17 are in, 18 and 19 tie with 0 and 1 for two places.
    predicted = [4.0 if i in (15, 16, 17) else 3.0 if i in (0, 1, 18, 19) else -1.0 for i in range(20)]
    assert correlation(predicted, truth, "tied", top=0.25).top_accuracy == pytest.approx(
        (15 + 16 + 17 + (0 + 1 + 18 + 19) / 2) / 5
    )
    # An arch without a prediction is never picked; with fewer predictions than places there is no mean.
    missing = [math.nan if t >= 15 else t for t in truth]
    assert correlation(missing, truth, "missing", top=0.25).top_accuracy == 12.0
    assert math.isnan(correlation([math.nan] * 17 + [1.0, 2.0, 3.0], truth, "sparse", top=0.25).top_accuracy)
    assert math.isnan(correlation(truth, truth, "not asked").top_accuracy)


def test_top_truth_is_the_ceiling_of_top_accuracy() -> None:
    predicted, truth = _noisy(30, 0.5, 6)
    best = top_truth(truth, 0.2)
    assert best == sorted(truth, reverse=True)[:6]
    assert correlation(truth, truth, "perfect", top=0.2).top_accuracy == pytest.approx(sum(best) / 6)
    assert correlation(predicted, truth, "noisy", top=0.2).top_accuracy <= sum(best) / 6
