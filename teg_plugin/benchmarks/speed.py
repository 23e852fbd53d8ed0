"""Speed of the scorer's fast path against the plain implementation of the same definitions."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, replace

from teg_plugin._progress import progress_bar
from teg_plugin.config import NTK_MODES
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
    other_ntk: str | None = None
    other_ntk_seconds: tuple[float, ...] = ()

    @property
    def other_ntk_median(self) -> float | None:
        """Median time of the fast path under :attr:`other_ntk` (``None`` when not measured)."""
        return statistics.median(self.other_ntk_seconds) if self.other_ntk_seconds else None

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


def run_speed(scorer: TEGScorer, k: int, seed: int, *, progress: bool = False, other_ntk: bool = False) -> SpeedResult:
    """Score ``k`` random architectures with both implementations, timing each (CPU for the plain one).

    With ``other_ntk``, also time the fast path under the other :attr:`TEGConfig.ntk` mode on the
    same architectures and inputs, interleaved with the runs above (so load affects both alike).
    """
    other_config = (
        replace(scorer.config, ntk=next(m for m in NTK_MODES if m != scorer.config.ntk)) if other_ntk else None
    )
    other_seconds: list[float] = []
    rng = random.Random(seed)
    archs = scorer.space.sample_distinct(rng, k)
    fast, plain = [], []
    bar = progress_bar(len(archs), progress, "fast vs plain", "arch")
    for arch in archs:
        mask = scorer.space.mask_of(arch)
        start = time.perf_counter()
        score = measure_mask(scorer.space, mask, scorer.inputs, scorer.config, scorer.device)
        fast.append(replace(score, seconds=time.perf_counter() - start))
        start = time.perf_counter()
        score = plain_score(scorer.space, mask, scorer.inputs, scorer.config)
        plain.append(replace(score, seconds=time.perf_counter() - start))
        if other_config is not None:
            start = time.perf_counter()
            measure_mask(scorer.space, mask, scorer.inputs, other_config, scorer.device)
            other_seconds.append(time.perf_counter() - start)
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return SpeedResult(
        archs=[scorer.space.format(a) for a in archs],
        fast_seconds=[s.seconds for s in fast],
        plain_seconds=[s.seconds for s in plain],
        fast_ranks=final_ranks(fast),
        plain_ranks=final_ranks(plain),
        max_relative_difference=max(_relative_difference(f, p) for f, p in zip(fast, plain)),
        other_ntk=None if other_config is None else other_config.ntk,
        other_ntk_seconds=tuple(other_seconds),
    )
