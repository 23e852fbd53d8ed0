"""The final choice: re-rank a search's best candidates over further score seeds.

A search ranks everything it evaluated under one score seed (one draw of inputs and initial
weights), and among good architectures that ranking is noisy: which of them ranks first changes
from seed to seed. The final-choice stage takes the ``top`` best distinct candidates, scores each
under ``seeds`` further, independent score seeds (new inputs and initial weights, the protocol
otherwise unchanged), ranks the candidates among themselves under each seed with a
:class:`~teg_plugin.scores.RankRule` (by default :data:`DEFAULT_CONFIRM_RULE`), and picks the lowest mean rank-sum over all seeds, the
search's own included. A rule's complexity term is the same under every seed; the zero-cost proxies
it names are computed under each seed (its inputs and initial weights), as the indicators are.
Benchmark accuracies are never read here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from teg_plugin._checks import check_int
from teg_plugin._progress import progress_bar
from teg_plugin.indicators.init import stable_seed
from teg_plugin.scores import RankRule, TEGScore, distinct_order, rank_sums

if TYPE_CHECKING:
    from teg_plugin.scorer import TEGScorer
    from teg_plugin.spaces import SearchSpace

#: Candidates re-ranked when a final choice is made: the search's best distinct architectures.
DEFAULT_CONFIRM_TOP = 10
#: ``--confirm-top`` of ``teg-nas search`` and ``bench search`` by default: 0, no final choice. Over
#: four seeds of the default protocol (``--ntk exact``) it lowered the pick (cifar10_valid 90.42
#: against 90.76 without it); over five ``--ntk frozen-bn`` searches it raised it (90.51 against
#: 90.11). See docs/benchmarks.md.
SEARCH_CONFIRM_TOP = 0
#: Further score seeds per candidate by default.
DEFAULT_CONFIRM_SEEDS = 3
#: How candidates are ranked under each seed by default: E plus twice G, without T. Among good
#: architectures T's rank carries no signal on average over score seeds (its Kendall tau with
#: accuracy is about 0 among the top 10%), while E and G keep some; chosen on cifar10_valid in a
#: simulation over 350 good NB201 cells and in five searches (docs/benchmarks.md).
DEFAULT_CONFIRM_RULE = RankRule((("regions", 1.0), ("kr_mse", 2.0)))

#: A known score of a candidate under a score seed: ``(arch text, seed) -> score``.
KnownScores = Mapping[tuple[str, int], TEGScore]


@dataclass(frozen=True)
class FinalChoice:
    """Settings of a final choice, for the APIs that make one after a search (the NNI strategies).

    Args:
        top: candidates re-ranked (the search's best distinct architectures).
        seeds: further score seeds per candidate.
        rule: how candidates are ranked under each seed.
        scorer: the scorer whose seed the search used (``None``: the caller's own, e.g. the
            experiment's :class:`~teg_plugin.nni.TEGEvaluator`'s).
    """

    top: int = DEFAULT_CONFIRM_TOP
    seeds: int = DEFAULT_CONFIRM_SEEDS
    rule: RankRule = DEFAULT_CONFIRM_RULE
    scorer: TEGScorer | None = None

    def __post_init__(self) -> None:
        check_int("FinalChoice.top", self.top, minimum=1)
        check_int("FinalChoice.seeds", self.seeds, minimum=1)
        if not isinstance(self.rule, RankRule):
            raise TypeError(f"FinalChoice.rule must be a RankRule, got {self.rule!r}")


def confirmation_seeds(seed: int, count: int) -> tuple[int, ...]:
    """The ``count`` further score seeds of a final choice made under score seed ``seed``.

    Derived from ``seed`` by name, so they differ from the consecutive seeds that independent runs
    use (``bench search --vary-score-seed``) and from ``seed`` itself.

    Example:
        >>> confirmation_seeds(0, 2) == confirmation_seeds(0, 3)[:2] and 0 not in confirmation_seeds(0, 3)
        True
    """
    check_int("confirm seeds", count, minimum=0)
    seeds: list[int] = []
    j = 0
    while len(seeds) < count:
        candidate = stable_seed(seed, "confirm", j) % 2**31
        if candidate != seed and candidate not in seeds:
            seeds.append(candidate)
        j += 1
    return tuple(seeds)


@dataclass(frozen=True)
class ConfirmedCandidate:
    """One candidate of a final choice.

    Args:
        text: the architecture's text form.
        scores: its score under each of the confirmation's seeds, in :attr:`Confirmation.seeds` order.
        rank_sums: its rank-sum among the candidates under each seed (``inf`` when bad there).
        mean_rank_sum: their mean (``inf`` when bad under any seed); the lowest is picked.
        search_rank: its place in the search's own ranking (1 = the search's best).
        extra: under each seed, the values of the rule's extra terms (complexity ``params``,
            proxies; NaN where a proxy is flagged); empty when the rule has none.
    """

    text: str
    scores: tuple[TEGScore, ...]
    rank_sums: tuple[float, ...]
    mean_rank_sum: float
    search_rank: int
    extra: tuple[Mapping[str, float], ...] = ()


@dataclass(frozen=True)
class Confirmation:
    """The outcome of a final choice (see the module docstring)."""

    seeds: tuple[int, ...]
    rule: RankRule
    candidates: tuple[ConfirmedCandidate, ...]
    #: Scores measured to make it (neither known nor found in a score cache).
    n_measured: int = 0

    @property
    def pick(self) -> ConfirmedCandidate:
        """The candidate with the lowest mean rank-sum (the search's better one among equals)."""
        return min(self.candidates, key=lambda c: (c.mean_rank_sum, c.search_rank))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers become ``None``): what a study stores."""
        return {
            "seeds": list(self.seeds),
            "rule": str(self.rule),
            "pick": self.pick.text,
            "candidates": [
                {
                    "arch": c.text,
                    "search_rank": c.search_rank,
                    "mean_rank_sum": _finite(c.mean_rank_sum),
                    "rank_sums": [_finite(v) for v in c.rank_sums],
                    "scores": [s.to_dict() for s in c.scores],
                    **(
                        {"extra": [{k: _finite(v) for k, v in values.items()} for values in c.extra]} if c.extra else {}
                    ),
                }
                for c in self.candidates
            ],
        }


def top_candidates(
    space: SearchSpace,
    archs: Sequence[Hashable],
    scores: Sequence[TEGScore],
    top: int,
    *,
    rule: RankRule | None = None,
    extra: Sequence[Mapping[str, float]] | None = None,
) -> list[Hashable]:
    """The ``top`` best good architectures of a search's history (``archs`` with their ``scores``),
    best first as :func:`~teg_plugin.scores.distinct_order` ranks them under the search's ``rule``
    (default: the paper's; ``extra``: the values of its extra terms, one mapping per position, e.g.
    :meth:`Strategy.extra_values <teg_plugin.strategies.Strategy.extra_values>`), one per
    isomorphism class (isomorphic architectures share one score, so a second would only repeat the
    first).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> space = NB201Space()
        >>> a, b = space.arch_at(1), space.arch_at(2)
        >>> top_candidates(space, [a, b, a], [TEGScore(9, 1, 9), TEGScore(1, 9, 1), TEGScore(9, 1, 9)], 5) == [b, a]
        True
    """
    check_int("top", top, minimum=0)
    chosen: list[Hashable] = []
    seen: set[str] = set()
    for position in distinct_order(archs, scores, rule, extra):
        if len(chosen) == top or scores[position].bad:  # bad scores come last
            break
        key = space.format(space.canonical(archs[position]))
        if key not in seen:
            seen.add(key)
            chosen.append(archs[position])
    return chosen


def confirm(
    scorer: TEGScorer,
    candidates: Sequence[Hashable],
    *,
    seeds: int = DEFAULT_CONFIRM_SEEDS,
    rule: RankRule = DEFAULT_CONFIRM_RULE,
    known: KnownScores | None = None,
    on_score: Callable[[str, int, TEGScore], None] | None = None,
    progress: bool = False,
) -> Confirmation:
    """Re-rank ``candidates`` (distinct architectures, the search's best first) over ``scorer``'s
    score seed and ``seeds`` further ones (:func:`confirmation_seeds`).

    Scores come from ``known`` where it has them, else from ``scorer.with_seed(seed)`` (its cache
    included); ``on_score(text, seed, score)`` is called after each new one, so a caller can keep
    finished work (a study does) before the stage ends. The values of ``rule``'s extra terms come
    from :meth:`~teg_plugin.scorer.TEGScorer.extra_values`: the zero-cost proxies by each seed's
    scorer (cached), the complexity term the same under every seed.

    Raises:
        ValueError: no candidates, or a negative ``seeds``.
    """
    if not candidates:
        raise ValueError("a final choice needs at least one candidate")
    check_int("seeds", seeds, minimum=0)
    known = known or {}
    all_seeds = (scorer.config.seed, *confirmation_seeds(scorer.config.seed, seeds))
    space = scorer.space
    texts = [space.format(a) for a in candidates]
    per_seed: list[list[TEGScore]] = []
    per_seed_extra: list[list[dict[str, float]] | None] = []
    n_measured = 0
    bar = progress_bar(len(candidates) * len(all_seeds), progress, "final choice", "score")
    try:
        for seed in all_seeds:
            seed_scorer = scorer if seed == scorer.config.seed else None
            before = 0 if seed_scorer is None else seed_scorer.n_measured
            row = []
            for arch, text in zip(candidates, texts):
                score = known.get((text, seed))
                if score is None:
                    if seed_scorer is None:
                        seed_scorer = scorer.with_seed(seed)
                    score = seed_scorer.score(arch)
                    if on_score is not None:
                        on_score(text, seed, score)
                row.append(score)
                if bar is not None:
                    bar.update()
            per_seed.append(row)
            n_measured += 0 if seed_scorer is None else seed_scorer.n_measured - before
            # the proxies under this seed's inputs and weights; the complexity is the same under every seed
            values_scorer = (seed_scorer or scorer.with_seed(seed)) if rule.proxies else scorer
            per_seed_extra.append(values_scorer.extra_values(candidates, rule))
    finally:
        if bar is not None:
            bar.close()
    sums = np.array(
        [rank_sums(row, rule, extra) for row, extra in zip(per_seed, per_seed_extra)]
    )  # (seeds, candidates)
    means = sums.mean(axis=0)
    confirmed = tuple(
        ConfirmedCandidate(
            text=texts[i],
            scores=tuple(per_seed[s][i] for s in range(len(all_seeds))),
            rank_sums=tuple(float(v) for v in sums[:, i]),
            mean_rank_sum=float(means[i]),
            search_rank=i + 1,
            extra=tuple(extra[i] for extra in per_seed_extra if extra is not None),
        )
        for i in range(len(candidates))
    )
    return Confirmation(all_seeds, rule, confirmed, n_measured)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
