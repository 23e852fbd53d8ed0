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

from teg_plugin._checks import check_fraction, check_seed
from teg_plugin.benchmarks.proxies import ProxyCheck, check_proxies
from teg_plugin.benchmarks.truth import read_columns, read_truth
from teg_plugin.proxies import ProxyScorer, get_proxy, parse_proxy_names
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import COMPLEXITY, RankRule, rank_sums

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

#: Fraction of the sample that the top-end measures look at, unless told otherwise: a search's answer
#: is decided among good architectures, where a predictor's global τ says little.
DEFAULT_TOP_FRACTION = 0.1


@dataclass(frozen=True)
class CorrelationRow:
    """Correlation of one predictor with accuracy over ``n`` architectures.

    ``kendall_ci`` is a 95% percentile-bootstrap interval of ``kendall`` (architectures resampled
    with replacement, predictions fixed); NaN bounds when it was not computed or is undefined.
    The top-end measures (see :func:`correlation`): ``kendall_top``, Kendall τ over the ``n_top``
    architectures with a prediction among the most accurate ones, and ``top_accuracy``, the mean
    accuracy of the architectures the predictor ranks best; NaN when not computed or undefined.
    """

    name: str
    n: int
    kendall: float
    spearman: float
    kendall_ci: tuple[float, float] = (math.nan, math.nan)
    n_top: int = 0
    kendall_top: float = math.nan
    top_accuracy: float = math.nan


@dataclass(frozen=True)
class CorrelationReport:
    """What :func:`run_correlation` measured: a row per predictor, and the scale of its top-end columns.

    ``top_count`` architectures (the top ``top_fraction`` of the sample) enter the top-end measures;
    ``top_ceiling`` is the mean accuracy of the ``top_count`` most accurate ones, the most any
    predictor's ``top_accuracy`` can reach, and ``sample_mean`` what a random choice gets on average.
    """

    rows: list[CorrelationRow]
    top_fraction: float
    top_count: int
    top_ceiling: float
    sample_mean: float
    #: Per proxy computed with ``compute_proxies``, how it compares with its published values.
    proxy_checks: tuple[ProxyCheck, ...] = ()


def correlation(
    predicted: Sequence[float],
    truth: Sequence[float],
    name: str,
    *,
    bootstrap: int = 0,
    seed: int = 0,
    top: float | None = None,
) -> CorrelationRow:
    """Kendall τ and Spearman ρ of ``predicted`` (higher = better) against ``truth``, NaN pairs dropped.

    With ``bootstrap > 0``, also a 95% interval of τ from that many resamples drawn with ``seed``;
    with fewer than :data:`MIN_PAIRS_FOR_INTERVAL` pairs there is none (NaN): resampling so few pairs
    gives percentile intervals that need not even contain τ.

    With ``top`` (a fraction in (0, 1]), also the top-end measures over ``m`` =
    :func:`top_count` architectures: ``kendall_top`` is τ within the most accurate ones (every
    architecture at least as accurate as the ``m``-th best, so ties there are all in; those without a
    prediction left out) and ``top_accuracy`` is the mean accuracy of the ``m`` the predictor ranks
    highest (an architecture without a prediction is never among them; predictions tied across the
    cut share its remaining places equally, which is the mean a random tie-break gives on average).
    Both count only architectures with a truth value; ``top_accuracy`` is NaN when fewer than ``m``
    have a prediction.
    """
    pairs = [(p, t) for p, t in zip(predicted, truth) if not (math.isnan(p) or math.isnan(t))]
    top_fields = _top_end(predicted, truth, top) if top is not None else {}
    if len(pairs) < 3:
        return CorrelationRow(name, len(pairs), math.nan, math.nan, **top_fields)
    p, t = np.array(pairs).T
    if np.ptp(p) == 0 or np.ptp(t) == 0:  # a constant side: both coefficients are undefined
        return CorrelationRow(name, len(pairs), math.nan, math.nan, **top_fields)
    ci = (
        _kendall_interval(p, t, bootstrap, seed)
        if bootstrap > 0 and len(pairs) >= MIN_PAIRS_FOR_INTERVAL
        else (math.nan, math.nan)
    )
    return CorrelationRow(name, len(pairs), float(kendalltau(p, t)[0]), float(spearmanr(p, t)[0]), ci, **top_fields)


def top_count(n: int, fraction: float) -> int:
    """How many of ``n`` architectures "the top ``fraction``" means: ⌈fraction·n⌉, at least 1.

    Raises:
        ValueError: ``fraction`` is not in (0, 1].
    """
    fraction = check_fraction("top", fraction)
    return max(1, math.ceil(fraction * n - 1e-9))  # 0.1 * 500 must give 50, not 51


def top_truth(truth: Sequence[float], fraction: float) -> list[float]:
    """The ``top_count`` highest of the finite values in ``truth``, best first (the ceiling of ``top_accuracy``)."""
    finite = sorted((t for t in truth if not math.isnan(t)), reverse=True)
    return finite[: top_count(len(finite), fraction)] if finite else []


def _top_end(predicted: Sequence[float], truth: Sequence[float], fraction: float) -> dict:
    known = [(p, t) for p, t in zip(predicted, truth) if not math.isnan(t)]
    if not known:
        return {}
    most_accurate = top_truth([t for _, t in known], fraction)
    m, cut = len(most_accurate), most_accurate[-1]
    best = [(p, t) for p, t in known if t >= cut and not math.isnan(p)]
    within = correlation([p for p, _ in best], [t for _, t in best], "top")  # its τ, NaN where undefined
    return {"n_top": len(best), "kendall_top": within.kendall, "top_accuracy": _mean_of_predicted_top(known, m)}


def _mean_of_predicted_top(known: list[tuple[float, float]], m: int) -> float:
    ranked = sorted(((p, t) for p, t in known if not math.isnan(p)), key=lambda pair: -pair[0])
    if len(ranked) < m:
        return math.nan
    cut = ranked[m - 1][0]
    above = [t for p, t in ranked if p > cut]
    tied = [t for p, t in ranked if p == cut]
    share = (m - len(above)) / len(tied)  # the places left at the cut, spread over the tied ones
    return (sum(above) + share * sum(tied)) / m


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
    top: float = DEFAULT_TOP_FRACTION,
    rules: Sequence[RankRule] = (),
    compute_proxies: Sequence[str] | str = (),
) -> CorrelationReport:
    """Score ``k`` sampled archs and correlate TEG (each indicator, and the rank-sum) with accuracy.

    Each of ``rules`` adds a row: the rank-sum under that :class:`~teg_plugin.scores.RankRule`;
    a rule with a complexity term also adds the complexity alone (``params (complexity)``). The
    zero-cost proxies the rules name are computed on the sampled architectures
    (:class:`~teg_plugin.proxies.ProxyScorer`, with the scorer's cache); a proxy flagged on an
    architecture ranks last for that term.

    With ``naslib_path`` the sample is drawn among the architectures that table covers, so every
    published proxy is compared on exactly the same architectures. ``bootstrap`` resamples (seeded
    with ``seed``) give each row's 95% interval of Kendall τ; 0 skips them. ``top`` is the fraction
    of the sample the top-end measures look at (see :func:`correlation`). ``compute_proxies``
    (names, see :mod:`teg_plugin.proxies`) are computed on the sampled architectures, each a row
    ``NAME (computed)`` beside the published columns, and checked against them
    (:attr:`CorrelationReport.proxy_checks`).

    Raises:
        FileNotFoundError: a table is missing (the message says which).
        ValueError: a table is not what it should be (no such columns, not UTF-8 CSV), a sampled
            architecture is missing from the truth, ``seed`` is outside ``0 .. 2**32 - 1`` or
            ``top`` outside (0, 1].
    """
    check_seed("seed", seed)
    check_fraction("top", top)  # before any table is read or arch scored
    proxy_names = parse_proxy_names(compute_proxies) if compute_proxies else ()
    truth = read_truth(truth_path, truth_column)
    naslib = (
        read_columns(naslib_path, what="NAS-Bench-Suite-Zero proxy table", expected=NASLIB_PROXIES)
        if naslib_path
        else None
    )
    proxies = (
        read_columns(proxies_path, what="published-proxy table", expected=ALL_ARCH_PROXIES) if proxies_path else None
    )
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
        return correlation(values, acc, name, bootstrap=bootstrap, seed=seed, top=top)

    rows = [
        corr([-s for s in rank_sums(scores)], "TEG rank-sum (neg)"),
        corr(good([-s.ntk_cond for s in scores]), "T: ntk_cond (neg)"),
        corr(good([s.regions for s in scores]), "E: regions"),
        corr(good([-s.kr_mse for s in scores]), "G: kr_mse (neg)"),
    ]
    complexities = [scorer.space.complexity(a) for a in archs] if any(rule.complexity for rule in rules) else None
    rule_proxies = tuple(dict.fromkeys(name for rule in rules for name in rule.proxies))
    computed = []
    if proxy_names or rule_proxies:  # each (arch, proxy) once, for the rules and the proxy rows
        computed = ProxyScorer(scorer).measure(
            archs, tuple(dict.fromkeys((*proxy_names, *rule_proxies))), progress=progress
        )
    extra = [
        {
            **({COMPLEXITY: float(complexities[i])} if complexities is not None else {}),
            **{name: computed[i][name].value for name in rule_proxies},
        }
        for i in range(len(archs))
    ]
    for rule in rules:
        rows.append(corr([-s for s in rank_sums(scores, rule, extra)], f"rule {rule} (neg)"))
    if complexities is not None:
        rows.append(corr([float(c) for c in complexities], "params (complexity)"))
    checks: tuple[ProxyCheck, ...] = ()
    if proxy_names:
        computed = [{name: row[name] for name in proxy_names} for row in computed]
        for name in proxy_names:
            sign = 1.0 if get_proxy(name).higher_is_better else -1.0
            rows.append(corr([sign * r[name].value for r in computed], f"{name} (computed)"))
        published = {t: {**(naslib or {}).get(t, {}), **(proxies or {}).get(t, {})} for t in texts}
        checks = tuple(check_proxies(texts, computed, published, acc))
    for table, names in ((naslib, NASLIB_PROXIES), (proxies, ALL_ARCH_PROXIES)):
        if table is None:
            continue
        for name, sign in names.items():
            values = [sign * table.get(t, {}).get(name, math.nan) for t in texts]
            rows.append(corr(values, name))
    best = top_truth(acc, top)
    return CorrelationReport(rows, top, len(best), sum(best) / len(best), sum(acc) / len(acc), checks)
