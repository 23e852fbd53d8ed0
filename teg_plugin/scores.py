"""The TEG result of one architecture, and how a set of results is ranked.

The paper ranks a set of architectures by the **sum of three ranks**: condition number of the NTK
ascending (lower = more trainable), number of linear regions descending (more = more expressive),
kernel-regression MSE ascending (lower = generalises better). Ties share the average rank. The lowest
rank-sum is best. An architecture flagged ``bad`` (undefined or non-finite indicator) ranks after
every good one.

A search's final answer ranks the *set* of architectures it evaluated (:func:`distinct_order`): an
architecture evaluated several times enters the ranks once, so how often a search revisits one
does not shift the ranks of the others. Strategies, the Optuna adapter, the NNI adapter and the
figures all pick through it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

#: The three indicators, in T, E, G order, and whether larger is better for each.
INDICATORS: tuple[str, ...] = ("ntk_cond", "regions", "kr_mse")
HIGHER_IS_BETTER: dict[str, bool] = {"ntk_cond": False, "regions": True, "kr_mse": False}


@dataclass(frozen=True)
class TEGScore:
    """The three TEG indicators of one architecture (each the mean over repeats).

    Args:
        ntk_cond: condition number λmax/λmin of the NTK on the training batch (T; lower is better).
        regions: number of distinct ReLU activation patterns of the thin network (E; higher is better).
        kr_mse: held-out MSE of NTK kernel regression (G; lower is better).
        bad: the architecture produced an undefined indicator (NaN/inf gradients, singular kernel);
            it is ranked last. The numbers may then be NaN.
        reason: why it is bad, for humans.
        seconds: wall time spent scoring it (0 when it came from the cache).

    The indicators are stored as floats; a score with a NaN or infinite indicator is always ``bad``
    (flagged here if the caller did not), so that it cannot spoil the ranks of the others.

    Raises:
        TypeError: if an indicator is not a real number.

    Example:
        >>> TEGScore(float("nan"), 50, 0.1).bad, TEGScore(10, 50, 0.1).ntk_cond
        (True, 10.0)
    """

    ntk_cond: float
    regions: float
    kr_mse: float
    bad: bool = False
    reason: str | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        undefined = []
        for key in INDICATORS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"TEGScore.{key} must be a real number, got {value!r}")
            value = float(value)
            object.__setattr__(self, key, value)
            if not math.isfinite(value):
                undefined.append(f"{key} is {value}")
        if undefined and not self.bad:
            object.__setattr__(self, "bad", True)
            object.__setattr__(self, "reason", self.reason or f"undefined indicator ({', '.join(undefined)})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN and inf become ``None``)."""
        out = asdict(self)
        for key in INDICATORS:
            value = out[key]
            out[key] = value if value is not None and math.isfinite(value) else None
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TEGScore:
        """Inverse of :meth:`to_dict`: ``None`` or a non-number reads as NaN, and a score with an
        undefined indicator is ``bad`` whatever ``values["bad"]`` says (missing: ``False``).

        Example:
            >>> TEGScore.from_dict({"ntk_cond": 3.0, "regions": 8.0, "kr_mse": None}).bad
            True
        """
        numbers = {}
        for key in INDICATORS:
            raw = values[key]
            try:
                numbers[key] = math.nan if raw is None else float(raw)
            except (TypeError, ValueError):
                numbers[key] = math.nan
        bad = bool(values.get("bad", False)) or not all(math.isfinite(v) for v in numbers.values())
        reason = values.get("reason") or ("undefined indicator" if bad else None)
        return cls(**numbers, bad=bad, reason=reason if bad else None)

    @classmethod
    def flagged(cls, reason: str, seconds: float = 0.0) -> TEGScore:
        """A ``bad`` result with no usable indicator."""
        return cls(math.nan, math.nan, math.nan, bad=True, reason=reason, seconds=seconds)

    @classmethod
    def mean_of(cls, repeats: Sequence[TEGScore], seconds: float | None = None) -> TEGScore:
        """The score of several repeats: each indicator's mean; ``bad`` (with every distinct reason)
        when any repeat is; ``seconds`` defaults to the repeats' sum.

        Example:
            >>> TEGScore.mean_of([TEGScore(2.0, 10.0, 1.0), TEGScore(4.0, 20.0, 3.0)]).ntk_cond
            3.0
        """
        if not repeats:
            raise ValueError("cannot average no repeats")
        # A repeat's reason may join several ("a; b"): keep each distinct part once, in order.
        reasons = list(dict.fromkeys(part for r in repeats if r.bad and r.reason for part in r.reason.split("; ")))
        bad = any(r.bad for r in repeats)
        return cls(
            *(math.fsum(getattr(r, key) for r in repeats) / len(repeats) for key in INDICATORS),
            bad=bad,
            reason="; ".join(reasons) or ("undefined indicator" if bad else None),
            seconds=math.fsum(r.seconds for r in repeats) if seconds is None else seconds,
        )


def indicator_ranks(scores: Sequence[TEGScore]) -> np.ndarray:
    """Per-indicator ranks, shape ``(len(scores), 3)``, 1 = best, ties averaged; bad rows get NaN."""
    n = len(scores)
    ranks = np.full((n, len(INDICATORS)), np.nan)
    good = np.array([not s.bad for s in scores], dtype=bool)
    if not good.any():
        return ranks
    for col, key in enumerate(INDICATORS):
        values = np.array([getattr(s, key) for s, ok in zip(scores, good) if ok], dtype=float)
        ranks[good, col] = rankdata(-values if HIGHER_IS_BETTER[key] else values, method="average")
    return ranks


def rank_sums(scores: Sequence[TEGScore], rule: RankRule | None = None, complexities: Sequence[float] | None = None) -> np.ndarray:
    """The TEG rank-sum of each score within ``scores`` (lower is better; bad ones get +inf).

    ``rule`` (default: the paper's, every indicator's rank with weight 1) says which ranks are summed
    with what weight; a rule with a complexity term needs ``complexities`` (one per score, e.g.
    :meth:`~teg_plugin.spaces.SearchSpace.complexity`).
    """
    ranks = indicator_ranks(scores)
    if rule is None or rule == PAPER_RULE:
        sums = ranks.sum(axis=1)
    else:
        sums = ranks @ np.array([rule.weight(key) for key in INDICATORS])
        if rule.complexity:
            if complexities is None or len(complexities) != len(scores):
                raise ValueError("this rank rule has a complexity term: pass one complexity per score")
            good = ~np.isnan(sums)
            if good.any():  # more parameters rank first, among the good scores
                sums[good] += rule.complexity * rankdata(-np.asarray(complexities, dtype=float)[good], method="average")
    return np.where(np.isnan(sums), np.inf, sums)


@dataclass(frozen=True)
class RankRule:
    """How a set of scores is ranked: a weighted sum of the indicators' ranks, plus optionally the
    rank of the network's complexity (its parameter count: more ranks first), as AZ-NAS adds one.

    Args:
        weights: ``(indicator, weight)`` pairs; an indicator left out has weight 0. Weights are
            finite and non-negative, and at least one indicator weighs more than 0.
        complexity: weight of the complexity rank (0: none).

    Example:
        >>> RankRule.parse("regions=1,kr_mse=2,params=0.5")
        RankRule(weights=(('regions', 1.0), ('kr_mse', 2.0)), complexity=0.5)
        >>> str(PAPER_RULE)
        'ntk_cond=1,regions=1,kr_mse=1'
    """

    weights: tuple[tuple[str, float], ...] = tuple((key, 1.0) for key in INDICATORS)
    complexity: float = 0.0

    def __post_init__(self) -> None:
        weights = tuple((str(key), float(value)) for key, value in dict(self.weights).items())
        unknown = [key for key, _ in weights if key not in INDICATORS]
        if unknown:
            raise ValueError(f"unknown indicator {unknown[0]!r} in a rank rule; known: {', '.join(INDICATORS)}, {COMPLEXITY}")
        values = [value for _, value in weights] + [float(self.complexity)]
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"rank-rule weights must be finite and >= 0, got {self}")
        if not any(value > 0 for _, value in weights):
            raise ValueError("a rank rule needs at least one indicator with a weight above 0")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "complexity", float(self.complexity))

    def weight(self, indicator: str) -> float:
        """The weight of ``indicator`` (0 when the rule leaves it out)."""
        return dict(self.weights).get(indicator, 0.0)

    @classmethod
    def parse(cls, text: str) -> RankRule:
        """A rule from ``"name=weight,..."`` (names: the indicators and ``params``; a bare name
        weighs 1), e.g. ``"ntk_cond,regions,kr_mse"`` (the paper's) or ``"regions,kr_mse=2"``."""
        weights: dict[str, float] = {}
        complexity = 0.0
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            name, _, value = part.partition("=")
            name = name.strip()
            try:
                number = float(value) if value.strip() else 1.0
            except ValueError:
                raise ValueError(f"rank rule {text!r}: {part!r} is not name=number") from None
            if name == COMPLEXITY:
                complexity = number
            else:
                weights[name] = number
        return cls(tuple(weights.items()), complexity)

    def __str__(self) -> str:
        parts = [f"{key}={value:g}" for key, value in self.weights if value]
        if self.complexity:
            parts.append(f"{COMPLEXITY}={self.complexity:g}")
        return ",".join(parts)


#: The name of the complexity term in a :class:`RankRule`'s text form.
COMPLEXITY = "params"
#: The paper's rule: the plain sum of the three indicators' ranks.
PAPER_RULE = RankRule()


def final_ranks(scores: Sequence[TEGScore]) -> list[int]:
    """Positions 1..n by rank-sum (ties share the lowest position); bad ones come after all good ones."""
    if not scores:
        return []
    return [int(r) for r in rankdata(rank_sums(scores), method="min")]


def best_index(scores: Sequence[TEGScore], rule: RankRule | None = None, complexities: Sequence[float] | None = None) -> int:
    """Index of the best score by rank-sum under ``rule`` (default: the paper's; see :func:`rank_sums`
    for ``complexities``), the first one among equals; raises on an empty list."""
    if not scores:
        raise ValueError("cannot pick the best of no scores")
    return int(np.argmin(rank_sums(scores, rule, complexities)))


def first_occurrences(keys: Sequence[Hashable]) -> list[int]:
    """Positions of the first occurrence of each distinct key, in order of appearance."""
    first: dict[Hashable, int] = {}
    for position, key in enumerate(keys):
        first.setdefault(key, position)
    return list(first.values())


def distinct_order(
    keys: Sequence[Hashable],
    scores: Sequence[TEGScore],
    rule: RankRule | None = None,
    complexities: Sequence[float] | None = None,
) -> list[int]:
    """Positions of ``scores``, one per distinct key (its first occurrence), best rank-sum first.

    The rank-sums are those of the distinct keys' scores among themselves: a key that occurs several
    times is ranked once, with the score at its first occurrence. Among equal rank-sums the key
    that occurs first comes first; bad scores come last. ``rule`` and ``complexities`` (one per
    position of ``scores``) are :func:`rank_sums`'s.

    Example:
        >>> a, b, c = TEGScore(1, 1, 1), TEGScore(2, 3, 2), TEGScore(3, 2, 3)
        >>> distinct_order(["a", "b", "c", "c"], [a, b, c, c])   # a and b tie; "c" twice counts once
        [0, 1, 2]
        >>> best_index([a, b, c, c])                             # ranked as a multiset, b would win
        1
    """
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} keys for {len(scores)} scores")
    positions = first_occurrences(keys)
    distinct_complexities = None if complexities is None else [complexities[p] for p in positions]
    sums = rank_sums([scores[p] for p in positions], rule, distinct_complexities)
    return [positions[i] for i in sorted(range(len(positions)), key=lambda i: (sums[i], i))]


def best_distinct_index(
    keys: Sequence[Hashable],
    scores: Sequence[TEGScore],
    rule: RankRule | None = None,
    complexities: Sequence[float] | None = None,
) -> int:
    """Position of the best of the distinct keys by rank-sum (:func:`distinct_order`'s first);
    raises ``ValueError`` on an empty list."""
    if not scores:
        raise ValueError("cannot pick the best of no scores")
    return distinct_order(keys, scores, rule, complexities)[0]
