"""How well TEG ranks architectures: rank correlation with NB201 accuracy, beside published proxies.

For benchmarks and reports only (reads accuracies); never imported by search code.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import kendalltau, spearmanr

from teg_plugin._checks import check_seed
from teg_plugin.benchmarks.truth import read_columns, read_truth
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import rank_sums

#: Published proxies compared against, and the sign that makes "higher = predicted better".
NASLIB_PROXIES: dict[str, float] = {
    "nwot": 1.0,
    "synflow": 1.0,
    "jacov": 1.0,
    "snip": 1.0,
    "grad_norm": 1.0,
    "fisher": 1.0,
    "grasp": 1.0,
    "epe_nas": 1.0,
    "l2_norm": 1.0,
    "params_mb": 1.0,
    "flops_m": 1.0,
}
ALL_ARCH_PROXIES: dict[str, float] = {"naswot_v1_score_cifar10": 1.0, "zen_cifar10": 1.0}


#: Bootstrap resamples behind each Kendall τ confidence interval, unless told otherwise.
DEFAULT_BOOTSTRAP = 1000

#: Fewest (prediction, truth) pairs a bootstrap interval of Kendall τ is given for.
MIN_PAIRS_FOR_INTERVAL = 10


@dataclass(frozen=True)
class CorrelationRow:
    """Correlation of one predictor with accuracy over ``n`` architectures.

    ``kendall_ci`` is a 95% percentile-bootstrap interval of ``kendall`` (architectures resampled
    with replacement, predictions fixed); NaN bounds when it was not computed or is undefined.
    """

    name: str
    n: int
    kendall: float
    spearman: float
    kendall_ci: tuple[float, float] = (math.nan, math.nan)


def correlation(
    predicted: Sequence[float], truth: Sequence[float], name: str, *, bootstrap: int = 0, seed: int = 0
) -> CorrelationRow:
    """Kendall τ and Spearman ρ of ``predicted`` (higher = better) against ``truth``, NaN pairs dropped.

    With ``bootstrap > 0``, also a 95% interval of τ from that many resamples drawn with ``seed``;
    with fewer than :data:`MIN_PAIRS_FOR_INTERVAL` pairs there is none (NaN): resampling so few pairs
    gives percentile intervals that need not even contain τ.
    """
    pairs = [(p, t) for p, t in zip(predicted, truth) if not (math.isnan(p) or math.isnan(t))]
    if len(pairs) < 3:
        return CorrelationRow(name, len(pairs), math.nan, math.nan)
    p, t = np.array(pairs).T
    if np.ptp(p) == 0 or np.ptp(t) == 0:  # a constant side: both coefficients are undefined
        return CorrelationRow(name, len(pairs), math.nan, math.nan)
    ci = _kendall_interval(p, t, bootstrap, seed) if bootstrap > 0 and len(pairs) >= MIN_PAIRS_FOR_INTERVAL else (math.nan, math.nan)
    return CorrelationRow(name, len(pairs), float(kendalltau(p, t)[0]), float(spearmanr(p, t)[0]), ci)


def _kendall_interval(p: np.ndarray, t: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    taus = []
    with warnings.catch_warnings():  # a small sample's resample can be constant: τ is then NaN, skipped
        warnings.simplefilter("ignore")
        for _ in range(resamples):
            idx = rng.integers(0, len(p), len(p))
            taus.append(kendalltau(p[idx], t[idx])[0])
    finite = np.array([x for x in taus if math.isfinite(x)])
    if len(finite) < resamples // 2:  # mostly constant resamples: no meaningful interval
        return (math.nan, math.nan)
    lo, hi = np.percentile(finite, [2.5, 97.5])
    return (float(lo), float(hi))


def sample_archs(scorer: TEGScorer, k: int, seed: int, pool: Sequence[str] | None = None) -> list:
    """``k`` distinct architectures, uniformly from ``pool`` (arch strings) or from the whole space."""
    rng = random.Random(seed)
    if pool is not None:
        if k > len(pool):
            raise ValueError(f"asked for {k} architectures but the proxy table covers only {len(pool)}")
        return [scorer.space.parse(text) for text in rng.sample(sorted(pool), k)]
    return scorer.space.sample_distinct(rng, k)


def run_correlation(
    scorer: TEGScorer,
    truth_path: str | os.PathLike[str],
    k: int,
    seed: int,
    *,
    naslib_path: str | os.PathLike[str] | None = None,
    proxies_path: str | os.PathLike[str] | None = None,
    truth_column: str = "cifar10_test",
    progress: bool = False,
    bootstrap: int = DEFAULT_BOOTSTRAP,
) -> list[CorrelationRow]:
    """Score ``k`` sampled archs and correlate TEG (each indicator, and the rank-sum) with accuracy.

    With ``naslib_path`` the sample is drawn among the architectures that table covers, so every
    published proxy is compared on exactly the same architectures. ``bootstrap`` resamples (seeded
    with ``seed``) give each row's 95% interval of Kendall τ; 0 skips them.

    Raises:
        FileNotFoundError: a table is missing (the message says which).
        ValueError: a table is not what it should be (no such columns, not UTF-8 CSV), a sampled
            architecture is missing from the truth, or ``seed`` is outside ``0 .. 2**32 - 1``.
    """
    check_seed("seed", seed)
    truth = read_truth(truth_path, truth_column)
    naslib = (
        read_columns(naslib_path, what="NAS-Bench-Suite-Zero proxy table", expected=NASLIB_PROXIES)
        if naslib_path
        else None
    )
    proxies = read_columns(proxies_path, what="published-proxy table", expected=ALL_ARCH_PROXIES) if proxies_path else None
    archs = sample_archs(scorer, k, seed, pool=list(naslib) if naslib else None)
    texts = [scorer.space.format(a) for a in archs]
    missing = [t for t in texts if t not in truth]
    if missing:
        raise ValueError(f"{len(missing)} sampled architectures are missing from {truth_path}, e.g. {missing[0]}")
    acc = [truth[t] for t in texts]
    scores = scorer.score_many(archs, progress=progress)

    def good(values: list[float]) -> list[float]:
        return [v if not s.bad else math.nan for v, s in zip(values, scores)]

    def corr(values: Sequence[float], name: str) -> CorrelationRow:
        return correlation(values, acc, name, bootstrap=bootstrap, seed=seed)

    rows = [
        corr([-s for s in rank_sums(scores)], "TEG rank-sum (neg)"),
        corr(good([-s.ntk_cond for s in scores]), "T: ntk_cond (neg)"),
        corr(good([s.regions for s in scores]), "E: regions"),
        corr(good([-s.kr_mse for s in scores]), "G: kr_mse (neg)"),
    ]
    for table, names in ((naslib, NASLIB_PROXIES), (proxies, ALL_ARCH_PROXIES)):
        if table is None:
            continue
        for name, sign in names.items():
            values = [sign * table.get(t, {}).get(name, math.nan) for t in texts]
            rows.append(corr(values, name))
    return rows
