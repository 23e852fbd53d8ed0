"""Speed of the scorer's fast path against the plain implementation of the same definitions."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, replace

from teg_plugin.indicators.measure import measure_mask
from teg_plugin.reference.plain import plain_score
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import TEGScore, final_ranks


@dataclass(frozen=True)
class SpeedResult:
    """Per-architecture wall times (seconds, all repeats) of both implementations on the same inputs."""

    archs: list[str]
    fast_seconds: list[float]
    plain_seconds: list[float]
    fast_ranks: list[int]
    plain_ranks: list[int]
    max_relative_difference: float

    @property
    def fast_median(self) -> float:
        return statistics.median(self.fast_seconds)

    @property
    def plain_median(self) -> float:
        return statistics.median(self.plain_seconds)

    @property
    def speedup(self) -> float:
        return self.plain_median / self.fast_median

    @property
    def same_ranking(self) -> bool:
        return self.fast_ranks == self.plain_ranks


def _relative_difference(a: TEGScore, b: TEGScore) -> float:
    worst = 0.0
    for x, y in ((a.ntk_cond, b.ntk_cond), (a.regions, b.regions), (a.kr_mse, b.kr_mse)):
        if x != x and y != y:  # both NaN
            continue
        worst = max(worst, abs(x - y) / max(abs(y), 1e-12))
    return worst


def run_speed(scorer: TEGScorer, k: int, seed: int, *, progress: bool = False) -> SpeedResult:
    """Score ``k`` random architectures with both implementations, timing each (CPU for the plain one)."""
    rng = random.Random(seed)
    archs = scorer.space.sample_distinct(rng, k)
    fast, plain = [], []
    iterator = archs
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(archs, desc="fast vs plain", unit="arch")
    for arch in iterator:
        mask = scorer.space.mask_of(arch)
        start = time.perf_counter()
        score = measure_mask(scorer.space, mask, scorer.inputs, scorer.config, scorer.device)
        fast.append(replace(score, seconds=time.perf_counter() - start))
        start = time.perf_counter()
        score = plain_score(scorer.space, mask, scorer.inputs, scorer.config)
        plain.append(replace(score, seconds=time.perf_counter() - start))
    return SpeedResult(
        archs=[scorer.space.format(a) for a in archs],
        fast_seconds=[s.seconds for s in fast],
        plain_seconds=[s.seconds for s in plain],
        fast_ranks=final_ranks(fast),
        plain_ranks=final_ranks(plain),
        max_relative_difference=max(_relative_difference(f, p) for f, p in zip(fast, plain)),
    )
