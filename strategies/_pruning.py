"""TEG supernet pruning: drop the least important option of every choice, round after round."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import rankdata

from teg_plugin.scores import INDICATORS, TEGScore
from teg_plugin.strategies._base import ArchT, Strategy

if TYPE_CHECKING:
    from teg_plugin.spaces._base import Mask, SearchSpace

#: Scores a supernet mask (choice -> active options); what :class:`PruningStrategy` is given. It may
#: return one score per repeat (e.g. ``TEGScorer.score_mask_repeats``) or a single (mean) score.
ScoreMask = Callable[["Mask"], "TEGScore | Sequence[TEGScore]"]

#: A mask as this module builds it.
FrozenMask = dict[str, tuple[str, ...]]

#: Told each finished round, in order (e.g. to log progress or save a checkpoint).
OnRound = Callable[["PruneRound"], None]

# The sign that makes a relative change "how much removing an option hurts": kappa and MSE going up,
# regions going down.
_HURT_SIGN = {"ntk_cond": 1.0, "regions": -1.0, "kr_mse": 1.0}

_MAX_MUTATION_TRIES = 20

#: Options TE-NAS takes out of the supernet before the first round: its pruning code marks the zero
#: op as pruned up front (NB201 and DARTS alike), so a pruned cell never holds ``none``.
TENAS_EXCLUDED_OPTIONS: tuple[str, ...] = ("none",)


@dataclass(frozen=True)
class PruneCandidate:
    """One option scored for removal in a round.

    Attributes:
        choice, option: the option removed.
        score: TEG score of the mask without it (mean over repeats).
        deltas: how much the removal hurts on each indicator (larger = more important), as TE-NAS
            measures it: the relative change, repeat by repeat, averaged over repeats.
            ``ntk_cond`` = mean of (kappa(removed) - kappa(current)) / kappa(current), ``regions``
            = mean of (regions(current) - regions(removed)) / regions(current), ``kr_mse`` = mean
            of (MSE(removed) - MSE(current)) / MSE(current); NaN where a score is bad.
        ranks: rank of each delta among the round's good candidates (1 = largest delta, ties
            averaged); NaN for a bad candidate. When the current mask itself is bad, the ranks
            order the removed masks' own mean values instead (higher kappa = more important...).
        rank_sum: sum of ``ranks``; ``-inf`` for a bad candidate (removing it breaks the network, so
            it counts as the most important).
    """

    choice: str
    option: str
    score: TEGScore
    deltas: dict[str, float]
    ranks: dict[str, float]
    rank_sum: float

    @property
    def bad(self) -> bool:
        """Whether the mask without this option scored ``bad``."""
        return _is_bad(self.score)


@dataclass(frozen=True)
class PruneRound:
    """One pruning round: the mask it started from, that mask's score, every candidate, and the
    option dropped on each choice that had more than one."""

    index: int
    mask: FrozenMask
    baseline: TEGScore
    candidates: tuple[PruneCandidate, ...]
    dropped: dict[str, str]


class PruningStrategy(Strategy[ArchT]):
    """TEG-NAS's supernet path: prune the full supernet down to one architecture with ``score_mask``.

    The supernet starts as the space's :meth:`~teg_plugin.spaces.SearchSpace.full_mask` without
    ``exclude_options`` (by default TE-NAS's: the zero op ``none``; a choice left with nothing keeps
    its options). Each round scores the current mask once, then the mask without each (choice,
    option) of every choice that still has more than one option. A removal's importance on each
    indicator is how much it hurts, as a relative change averaged over repeats (see
    :class:`PruneCandidate`; TE-NAS also rounds it to 3 decimals, which this does not); the candidates of the round are ranked on each indicator
    (1 = most important) and the ranks summed. On every multi-option choice the option with the
    **largest** rank-sum is dropped; ties go to the option that comes **last** in the space's order.
    A removal that scores ``bad`` breaks the network: that option is kept unless all options of the
    choice are bad (then the last one is dropped). Rounds repeat until one option per choice is left.

    Spaces with :meth:`~teg_plugin.spaces.SearchSpace.mask_groups` (DARTS: a node keeps 2 of its
    incoming edges) then get TE-NAS's edge phase: group after group, the mask without each of the
    group's remaining keys is scored, the removals ranked in the same way among that group, and all
    but the ``k`` most important keys emptied (ties keep the earlier key). What is left is the found
    architecture.

    Progress and resuming: ``on_round`` is told each round as it finishes; :attr:`finished_rounds`
    (what each round dropped) is a checkpoint that :meth:`restore` resumes from, so an interrupted
    run continues at its last finished round and picks what one uninterrupted run picks.

    Ask/tell: the first :meth:`ask` prunes (lazily, calling ``score_mask``) and returns the found
    architecture. To spend a larger budget, later asks propose the not yet asked or told
    architectures of the last round's mask (the small supernet with at most 2 options per choice) in
    a seeded random order, then mutations of :meth:`best` so far. The pruning itself does not use the
    seed.

    Args:
        space: the search space.
        score_mask: the TEG scores of a supernet mask, one per repeat (``TEGScorer.score_mask_repeats``:
            removals are then compared repeat by repeat, as TE-NAS does), or a single score (then
            the relative change of the means). Called ``n_supernet_evaluations`` times.
        seed: seed of the proposals after the found architecture.
        exclude_options: options removed from every choice before the first round; each must be an
            option of the space's supernet (:meth:`~teg_plugin.spaces.SearchSpace.full_mask`).
            ``None`` (the default) follows TE-NAS's code: :data:`TENAS_EXCLUDED_OPTIONS` that the
            space has (NB201: ``none``; DARTS has none of them); ``()`` prunes from every option, as the paper's text
            describes.
        on_round: called with each :class:`PruneRound` as it finishes (after its scores).

    Raises:
        TypeError: ``score_mask`` or ``on_round`` is not callable, ``exclude_options`` is a string or not a
            collection, or the seed is not an int.
        ValueError: an entry of ``exclude_options`` is not an option of the space (the message
            lists the valid ones).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> good = {"nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "avg_pool_3x3": 1.0, "skip_connect": 1.0}
        >>> def score_mask(mask):
        ...     q = sum(sum(good.get(o, 0.0) for o in opts) / len(opts) for opts in mask.values())
        ...     return TEGScore(ntk_cond=100.0 - q, regions=q, kr_mse=1.0 / (1.0 + q))
        >>> prune = PruningStrategy(NB201Space(), score_mask)
        >>> str(prune.run())
        '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|'
        >>> len(prune.rounds), prune.n_supernet_evaluations
        (3, 57)
    """

    def __init__(
        self,
        space: SearchSpace[ArchT],
        score_mask: ScoreMask,
        *,
        seed: int = 0,
        exclude_options: Collection[str] | None = None,
        on_round: OnRound | None = None,
    ) -> None:
        super().__init__(space, seed=seed)
        if not callable(score_mask):
            raise TypeError("score_mask must be callable: Mask -> TEGScore")
        if on_round is not None and not callable(on_round):
            raise TypeError("on_round must be callable: PruneRound -> None, or None")
        valid = list(dict.fromkeys(option for options in space.full_mask().values() for option in options))
        if exclude_options is None:
            exclude_options = [option for option in TENAS_EXCLUDED_OPTIONS if option in valid]
        if isinstance(exclude_options, str) or not isinstance(exclude_options, Collection):
            raise TypeError(f"exclude_options must be a collection of option names, got {exclude_options!r}")
        unknown = [option for option in exclude_options if option not in valid]  # a list: no hashing
        if unknown:
            raise ValueError(
                f"exclude_options: not an option of {space.name}: {', '.join(map(repr, unknown))}; "
                f"its options: {', '.join(map(repr, valid))}"
            )
        self._exclude = frozenset(exclude_options)
        self._score_mask = score_mask
        self._on_round = on_round
        self._n_evaluations = 0
        self._rounds: list[PruneRound] = []
        #: What each finished round dropped, restored ones (:meth:`restore`) included, in order.
        self._dropped: list[dict[str, str]] = []
        #: The mask each finished round started from, restored ones included.
        self._round_masks: list[FrozenMask] = []

        self._found: ArchT | None = None
        self._followups: list[ArchT] = []
        self._asked: set[ArchT] = set()
        self._told: set[ArchT] = set()

    @property
    def n_supernet_evaluations(self) -> int:
        """How many times ``score_mask`` has been called."""
        return self._n_evaluations

    @property
    def planned_evaluations(self) -> int:
        """How many times a full :meth:`run` calls ``score_mask``; known before it starts."""
        return self._evaluations_from(self._start_mask())

    @property
    def remaining_evaluations(self) -> int:
        """How many times :meth:`run` still calls ``score_mask`` from the last finished (or restored)
        round on; 0 once it has run."""
        return 0 if self._found is not None else self._evaluations_from(self._resumed_mask())

    def _evaluations_from(self, mask: FrozenMask) -> int:
        counts = [len(options) for options in mask.values()]
        total = 0
        while any(n > 1 for n in counts):
            total += 1 + sum(n for n in counts if n > 1)
            counts = [n - 1 if n > 1 else n for n in counts]
        for keys, keep in self._space.mask_groups():
            active = sum(1 for key in keys if mask[key])
            if active > keep:
                total += 1 + active
        return total

    @property
    def finished_rounds(self) -> list[dict[str, str]]:
        """What each finished round dropped (choice -> option; a group round: key -> its last
        option, the key emptied), restored rounds included: a checkpoint for :meth:`restore`."""
        return [dict(dropped) for dropped in self._dropped]

    def restore(self, finished_rounds: Sequence[Mapping[str, str]]) -> None:
        """Resume from a checkpoint (:attr:`finished_rounds` of an interrupted run of the same space
        and ``exclude_options``): :meth:`run` then applies those rounds without scoring them and
        scores the rest. Their details (:attr:`rounds`) are not restored.

        Raises:
            RuntimeError: :meth:`run` has already started.
            ValueError: the checkpoint does not fit this space (a round drops an option that is not
                active, or leaves out a choice that still has several options); nothing is changed.
        """
        if self._found is not None or self._dropped:
            raise RuntimeError("restore() must come before run()")
        rounds = [dict(dropped) for dropped in finished_rounds]
        mask = self._start_mask()
        for index, dropped in enumerate(rounds):
            mask = self._apply(mask, dropped, f"round {index}")
        self._dropped = rounds

    def _resumed_mask(self) -> FrozenMask:
        mask = self._start_mask()
        for index, dropped in enumerate(self._dropped):
            mask = self._apply(mask, dropped, f"round {index}")
        return mask

    def _apply(self, mask: FrozenMask, dropped: Mapping[str, str], where: str) -> FrozenMask:
        """``mask`` after a finished round that dropped ``dropped`` (``ValueError`` if it cannot have)."""
        unknown = [key for key, option in dropped.items() if option not in mask.get(key, ())]
        if unknown:
            raise ValueError(f"checkpoint {where}: {unknown[0]!r} has no active option {dropped[unknown[0]]!r}")
        multi = [key for key, options in mask.items() if len(options) > 1]
        if multi:  # an option round drops one option of every choice that has several
            if sorted(dropped) != sorted(multi):
                raise ValueError(
                    f"checkpoint {where}: expected one dropped option for each of {multi}, got {dict(dropped)}"
                )
            return {key: tuple(o for o in options if o != dropped.get(key)) for key, options in mask.items()}
        return {key: () if key in dropped else options for key, options in mask.items()}

    @property
    def rounds(self) -> list[PruneRound]:
        """The pruning rounds scored so far, in order (empty before :meth:`run`; rounds restored
        from a checkpoint are not among them)."""
        return list(self._rounds)

    def run(self) -> ArchT:
        """Prune (once; later calls return the same result) and return the found architecture."""
        if self._found is None:
            # Rounds restored from a checkpoint, or finished before an interrupted run(): not scored again.
            mask = self._start_mask()
            self._round_masks = []
            for index, dropped in enumerate(self._dropped):
                self._round_masks.append(mask)
                mask = self._apply(mask, dropped, f"round {index}")
            while any(len(options) > 1 for options in mask.values()):
                mask = self._prune_round(mask)
            for keys, keep in self._space.mask_groups():
                active = [key for key in keys if mask[key]]
                if len(active) > keep:
                    mask = self._prune_group(mask, active, keep)
            self._found = self._space.arch_from_mask(mask)
            self._followups = self._small_supernet_archs()
        return self._found

    def _start_mask(self) -> FrozenMask:
        mask = {}
        for name, options in self._space.full_mask().items():
            kept = tuple(o for o in options if o not in self._exclude)
            mask[name] = kept if kept else tuple(options)
        return mask

    def _propose(self, rng: random.Random) -> ArchT:
        found = self.run()
        seen = self._asked | self._told
        proposal = next((arch for arch in [found, *self._followups] if arch not in seen), None)
        if proposal is None:
            parent = self.best() if self._history else found
            proposal = self._space.mutate(parent, rng)
            for _ in range(_MAX_MUTATION_TRIES):
                if proposal not in seen:
                    break
                proposal = self._space.mutate(parent, rng)
        self._asked.add(proposal)
        return proposal

    def _observe(self, arch: ArchT, score: TEGScore) -> None:
        self._told.add(arch)

    def _score(self, mask: FrozenMask) -> tuple[TEGScore, ...]:
        """``score_mask``'s answer as one score per repeat (a single score is one repeat)."""
        self._n_evaluations += 1
        result = self._score_mask(dict(mask))
        repeats = (result,) if isinstance(result, TEGScore) else tuple(result)
        if not repeats or not all(isinstance(score, TEGScore) for score in repeats):
            raise TypeError(f"score_mask must return a TEGScore or a non-empty sequence of them, got {result!r}")
        return repeats

    def _prune_round(self, mask: FrozenMask) -> FrozenMask:
        baseline = self._score(mask)
        removals = [(name, option) for name, options in mask.items() if len(options) > 1 for option in options]
        scores = [self._score({**mask, name: tuple(o for o in mask[name] if o != option)}) for name, option in removals]
        candidates = _rank_candidates(removals, scores, baseline)
        baseline_score = TEGScore.mean_of(baseline)
        dropped: dict[str, str] = {}
        for name, options in mask.items():
            if len(options) > 1:
                own = [c for c in candidates if c.choice == name]
                # max() keeps the first maximum, so scan in reverse to drop the last of equals.
                dropped[name] = max(reversed(own), key=lambda c: c.rank_sum).option
        self._finish(
            PruneRound(
                index=len(self._dropped),
                mask=dict(mask),
                baseline=baseline_score,
                candidates=candidates,
                dropped=dropped,
            )
        )
        return {name: tuple(o for o in options if o != dropped.get(name)) for name, options in mask.items()}

    def _prune_group(self, mask: FrozenMask, active: list[str], keep: int) -> FrozenMask:
        """Keep the ``keep`` most important of a group's ``active`` keys (each down to one option by
        now); empty the others. Importance is ranked as for options, among the group's keys only."""
        baseline = self._score(mask)
        removals = [(key, mask[key][0]) for key in active]
        scores = [self._score({**mask, key: ()}) for key in active]
        candidates = _rank_candidates(removals, scores, baseline)
        # sorted() is stable: among equal rank-sums the earlier key is kept.
        kept = {c.choice for c in sorted(candidates, key=lambda c: c.rank_sum)[:keep]}
        dropped = {c.choice: c.option for c in candidates if c.choice not in kept}
        self._finish(
            PruneRound(
                index=len(self._dropped),
                mask=dict(mask),
                baseline=TEGScore.mean_of(baseline),
                candidates=candidates,
                dropped=dropped,
            )
        )
        return {key: () if key in dropped else options for key, options in mask.items()}

    def _finish(self, finished: PruneRound) -> None:
        self._rounds.append(finished)
        self._round_masks.append(finished.mask)
        self._dropped.append(dict(finished.dropped))
        if self._on_round is not None:
            self._on_round(finished)

    def _small_supernet_archs(self) -> list[ArchT]:
        """The architectures of the last round's mask except the found one, in a seeded order."""
        if not self._round_masks:
            return []
        mask = self._round_masks[-1]
        archs = []
        # Per key, its one-option masks, or the empty one where the rounds emptied the key.
        singles: list[list[tuple[str, ...]]] = [[(option,) for option in options] or [()] for options in mask.values()]
        for combo in itertools.product(*singles):
            single = dict(zip(mask, combo, strict=True))
            try:
                archs.append(self._space.arch_from_mask(single))
            except ValueError:  # not an architecture of the space (e.g. too many inputs on a node)
                continue
        archs = [arch for arch in archs if arch != self._found]
        random.Random(f"{self._seed}:small-supernet").shuffle(archs)
        return archs


def _is_bad(score: TEGScore) -> bool:
    return score.bad or not all(math.isfinite(getattr(score, key)) for key in INDICATORS)


def _rank_candidates(
    removals: list[tuple[str, str]], repeats: list[tuple[TEGScore, ...]], baseline: tuple[TEGScore, ...]
) -> tuple[PruneCandidate, ...]:
    means = [TEGScore.mean_of(r) for r in repeats]
    good = np.array([not _is_bad(score) for score in means], dtype=bool)
    base_bad = _is_bad(TEGScore.mean_of(baseline))
    if any(len(r) != len(baseline) for r in repeats):
        raise ValueError("score_mask returned different numbers of repeats for masks of one round")
    deltas = [
        {key: math.nan if bad or base_bad else _relative_hurt(key, scores, baseline) for key in INDICATORS}
        for scores, bad in zip(repeats, ~good, strict=True)
    ]
    ranks = np.full((len(repeats), len(INDICATORS)), np.nan)
    if good.any():
        for col, key in enumerate(INDICATORS):
            if base_bad:  # no reference to change from: the removed masks' own values
                hurt = [_HURT_SIGN[key] * getattr(m, key) for m, ok in zip(means, good) if ok]
            else:
                hurt = [d[key] for d, ok in zip(deltas, good) if ok]
            ranks[good, col] = rankdata(-np.array(hurt, dtype=float), method="average")
    return tuple(
        PruneCandidate(
            choice=name,
            option=option,
            score=mean,
            deltas=delta,
            ranks={key: float(ranks[row, col]) for col, key in enumerate(INDICATORS)},
            rank_sum=-math.inf if not good[row] else float(ranks[row].sum()),
        )
        for row, ((name, option), mean, delta) in enumerate(zip(removals, means, deltas, strict=True))
    )


def _relative_hurt(key: str, removed: Sequence[TEGScore], current: Sequence[TEGScore]) -> float:
    """Mean over repeats of the signed relative change of indicator ``key`` (TE-NAS's measure)."""
    changes = []
    for after, before in zip(removed, current, strict=True):
        reference = abs(getattr(before, key)) or 1.0  # a zero reference: the plain difference
        changes.append(_HURT_SIGN[key] * (getattr(after, key) - getattr(before, key)) / reference)
    return math.fsum(changes) / len(changes)
