"""The TEG result of one architecture, and how a set of results is ranked.

The paper ranks a set of architectures by the **sum of three ranks**: condition number of the NTK
ascending (lower = more trainable), number of linear regions descending (more = more expressive),
kernel-regression MSE ascending (lower = generalises better). Ties share the average rank. The lowest
rank-sum is best. An architecture flagged ``bad`` (undefined or non-finite indicator) ranks after
every good one.

A :class:`RankRule` generalises it: any weighted sum of the indicators' ranks, the rank of the
network's parameter count (``params``) and the ranks of zero-cost proxies (``synflow``, ``nwot``,
...), each ranked on its own, e.g. ``RankRule.parse("ntk_cond,regions,kr_mse,synflow=0.5")`` or
``RankRule.parse("nwot")``. This module needs no torch: it knows the proxies' names and directions
from :mod:`teg_plugin._proxy_table`, and their values are the caller's (:func:`rank_sums`'s ``extra``).

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
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import rankdata

from teg_plugin._proxy_table import PROXY_HIGHER_IS_BETTER

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
        means = {key: math.fsum(getattr(r, key) for r in repeats) / len(repeats) for key in INDICATORS}
        return cls(
            **means,
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


def rank_sums(
    scores: Sequence[TEGScore], rule: RankRule | None = None, extra: Sequence[Mapping[str, float]] | None = None
) -> np.ndarray:
    """The rank-sum of each score within ``scores`` under ``rule`` (lower is better; bad ones get +inf).

    ``rule`` (default: the paper's, every indicator's rank with weight 1) says which ranks are
    summed with what weight. Each term is ranked on its own among the good scores, in its own
    direction (1 = best, ties averaged): the indicators from the scores; the terms of
    :attr:`RankRule.extra_terms` (the complexity ``params`` and zero-cost proxies) from ``extra``,
    one mapping per score, term -> value (e.g. ``{"params": 1531546, "nwot": 790.2}``; further
    keys are ignored, and a bad score's mapping is not read). A term whose value is NaN or infinite
    (a proxy flagged on that architecture) ranks after every defined value of that term, such
    values sharing the last places; a ``bad`` TEG score still ranks after every good one.

    Raises:
        ValueError: the rule has extra terms and ``extra`` is missing, of another length than
            ``scores``, or lacks one of them for a good score.

    Example:
        >>> a, b, c = TEGScore(1, 3, 1), TEGScore(2, 2, 2), TEGScore(3, 1, 3)
        >>> rank_sums([a, b, c], RankRule.parse("nwot"), [{"nwot": 5.0}, {"nwot": 9.0}, {"nwot": math.nan}]).tolist()
        [2.0, 1.0, 3.0]
        >>> rank_sums([a, b, c], RankRule.parse("regions,params=0.5"), [{"params": 7}, {"params": 7}, {"params": 9}]).tolist()
        [2.25, 3.25, 3.5]
    """
    ranks = indicator_ranks(scores)
    if rule is None or rule == PAPER_RULE:
        sums = ranks.sum(axis=1)
        return np.where(np.isnan(sums), np.inf, sums)
    sums = ranks @ np.array([rule.weight(key) for key in INDICATORS])  # NaN for the bad scores
    terms = rule.extra_terms
    good = ~np.isnan(sums)
    if terms:
        if extra is None or len(extra) != len(scores):
            given = "none" if extra is None else f"{len(extra)} for {len(scores)} scores"
            raise ValueError(
                f"rank rule {rule} ranks by {', '.join(terms)}: pass their values, one mapping per "
                f"score (extra=[{{term: value}}, ...]); got {given}"
            )
        rows = [i for i in range(len(scores)) if good[i]]
        for term in terms:
            values = []
            for i in rows:
                try:
                    values.append(float(extra[i][term]))
                except KeyError:
                    raise ValueError(f"rank rule {rule}: score {i} has no value of {term!r}") from None
            sums[rows] += rule.weight(term) * term_ranks(values, RULE_TERMS[term])
    return np.where(good, sums, np.inf)


def term_ranks(values: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """Ranks of ``values`` (1 = best, ties averaged); NaN and infinite values share the last places.

    Example:
        >>> term_ranks([3.0, math.nan, 5.0, math.inf], higher_is_better=True).tolist()
        [2.0, 3.5, 1.0, 3.5]
    """
    array = np.asarray(values, dtype=float)
    defined = np.isfinite(array)
    n_defined = int(defined.sum())
    ranks = np.full(len(array), (n_defined + 1 + len(array)) / 2)
    if n_defined:
        ranks[defined] = rankdata(-array[defined] if higher_is_better else array[defined], method="average")
    return ranks


@dataclass(frozen=True)
class RankRule:
    """How a set of scores is ranked: a weighted sum of ranks, each term ranked on its own among the
    good scores (:func:`rank_sums`). The terms (:data:`RULE_TERMS`):

    * the three TEG indicators, ``ntk_cond``, ``regions``, ``kr_mse``;
    * ``params``, the complexity: :meth:`~teg_plugin.spaces.SearchSpace.complexity`, the parameter
      count of the network the architecture is trained as (more ranks first), as AZ-NAS adds one.
      For NAS-Bench-201 it is the same quantity as the zero-cost proxy ``params``
      (:mod:`teg_plugin.proxies.params`: the same network, counted in millions; 10 classes), so
      ranks alike; for a space whose proxy network is not its evaluation network (DARTS) the two
      differ, and a rule's ``params`` is always the complexity. Zero-cost: built, never run;
    * any other zero-cost proxy of :mod:`teg_plugin.proxies` (``synflow``, ``nwot``, ...), ranked in
      its own direction (:data:`teg_plugin._proxy_table.PROXY_HIGHER_IS_BETTER`).

    Args:
        weights: ``(term, weight)`` pairs; a term left out has weight 0. Weights are finite and
            non-negative, and at least one term weighs more than 0 (a rule of proxies alone, or of
            ``params`` alone, is valid). Terms of weight 0 are dropped and the rest kept in
            :data:`RULE_TERMS` order, so equal rules compare equal and ``str`` round-trips through
            :meth:`parse`.

    Raises:
        ValueError: an unknown or repeated term (the message lists the known ones), or a weight
            that is negative, not finite, or every weight 0.

    Example:
        >>> RankRule.parse("params=0.5,regions=1,kr_mse=2")
        RankRule(weights=(('regions', 1.0), ('kr_mse', 2.0), ('params', 0.5)))
        >>> rule = RankRule.parse("ntk_cond,regions,kr_mse,synflow=0.5")
        >>> str(rule), rule.extra_terms, RankRule.parse(str(rule)) == rule
        ('ntk_cond=1,regions=1,kr_mse=1,synflow=0.5', ('synflow',), True)
        >>> str(PAPER_RULE), RankRule.parse("nwot").proxies
        ('ntk_cond=1,regions=1,kr_mse=1', ('nwot',))
    """

    weights: tuple[tuple[str, float], ...] = tuple((key, 1.0) for key in INDICATORS)

    def __post_init__(self) -> None:
        given: dict[str, float] = {}
        for key, value in self.weights:
            key = str(key)
            if key not in RULE_TERMS:
                raise ValueError(f"unknown term {key!r} in a rank rule; known: {', '.join(RULE_TERMS)}")
            if key in given:
                raise ValueError(f"{key!r} appears twice in a rank rule")
            given[key] = float(value)
        if not all(math.isfinite(v) and v >= 0 for v in given.values()):
            shown = ",".join(f"{key}={value:g}" for key, value in given.items())
            raise ValueError(f"rank-rule weights must be finite and >= 0, got {shown}")
        if not any(value > 0 for value in given.values()):
            raise ValueError("a rank rule needs at least one term with a weight above 0")
        ordered = tuple((key, given[key]) for key in RULE_TERMS if given.get(key, 0.0) > 0)
        object.__setattr__(self, "weights", ordered)

    def weight(self, term: str) -> float:
        """The weight of ``term`` (0 when the rule leaves it out)."""
        return dict(self.weights).get(term, 0.0)

    @property
    def terms(self) -> tuple[str, ...]:
        """The terms with a weight above 0, in :data:`RULE_TERMS` order."""
        return tuple(key for key, _ in self.weights)

    @property
    def extra_terms(self) -> tuple[str, ...]:
        """The terms that are not indicators (``params`` and proxies): what :func:`rank_sums`
        needs values of, one mapping per score."""
        return tuple(key for key in self.terms if key not in HIGHER_IS_BETTER)

    @property
    def complexity(self) -> float:
        """The weight of the complexity term ``params`` (0: none)."""
        return self.weight(COMPLEXITY)

    @property
    def proxies(self) -> tuple[str, ...]:
        """The zero-cost proxies the rule ranks by (:attr:`extra_terms` but ``params``, the
        complexity), which a caller computes, e.g. with :class:`~teg_plugin.proxies.ProxyScorer`."""
        return tuple(key for key in self.extra_terms if key != COMPLEXITY)

    @classmethod
    def parse(cls, text: str) -> RankRule:
        """A rule from ``"term=weight,..."`` (terms: :data:`RULE_TERMS`; a bare name weighs 1),
        e.g. ``"ntk_cond,regions,kr_mse"`` (the paper's), ``"regions,kr_mse=2"``,
        ``"ntk_cond,regions,kr_mse,synflow=0.5"`` or ``"nwot"``.

        Raises:
            ValueError: a part that is not ``name`` or ``name=number``, and :class:`RankRule`'s errors.
        """
        pairs: list[tuple[str, float]] = []
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            name, _, value = part.partition("=")
            try:
                number = float(value) if value.strip() else 1.0
            except ValueError:
                raise ValueError(f"rank rule {text!r}: {part!r} is not name=number") from None
            pairs.append((name.strip(), number))
        return cls(tuple(pairs))

    def __str__(self) -> str:
        return ",".join(f"{key}={value:g}" for key, value in self.weights)


#: The name of the complexity term in a :class:`RankRule`.
COMPLEXITY = "params"
#: Every term a :class:`RankRule` may weigh, in the order its text form lists them, and whether a
#: higher value is better: the indicators, the complexity, then the other zero-cost proxies.
RULE_TERMS: Mapping[str, bool] = MappingProxyType(
    {
        **HIGHER_IS_BETTER,
        COMPLEXITY: True,
        **{name: higher for name, higher in PROXY_HIGHER_IS_BETTER.items() if name != COMPLEXITY},
    }
)
#: The paper's rule: the plain sum of the three indicators' ranks.
PAPER_RULE = RankRule()


def as_rank_rule(rule: RankRule | str | None) -> RankRule:
    """``rule`` as a :class:`RankRule`: a rule as it is, its text form parsed, ``None`` the paper's.

    Raises:
        TypeError: ``rule`` is none of these.
        ValueError: a text that does not parse (:meth:`RankRule.parse`).

    Example:
        >>> as_rank_rule("nwot") == RankRule.parse("nwot"), as_rank_rule(None) == PAPER_RULE
        (True, True)
    """
    if isinstance(rule, str):
        return RankRule.parse(rule)
    if rule is None:
        return PAPER_RULE
    if not isinstance(rule, RankRule):
        raise TypeError(f"rule must be a teg_plugin.scores.RankRule, its text (e.g. 'nwot') or None, got {rule!r}")
    return rule


def final_ranks(
    scores: Sequence[TEGScore], rule: RankRule | None = None, extra: Sequence[Mapping[str, float]] | None = None
) -> list[int]:
    """Positions 1..n by rank-sum under ``rule`` (default: the paper's; ``extra`` as for
    :func:`rank_sums`); ties share the lowest position; bad ones come after all good ones."""
    if not scores:
        return []
    return [int(r) for r in rankdata(rank_sums(scores, rule, extra), method="min")]


def best_index(
    scores: Sequence[TEGScore], rule: RankRule | None = None, extra: Sequence[Mapping[str, float]] | None = None
) -> int:
    """Index of the best score by rank-sum under ``rule`` (default: the paper's; ``extra`` as for
    :func:`rank_sums`), the first one among equals; raises on an empty list."""
    if not scores:
        raise ValueError("cannot pick the best of no scores")
    return int(np.argmin(rank_sums(scores, rule, extra)))


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
    extra: Sequence[Mapping[str, float]] | None = None,
) -> list[int]:
    """Positions of ``scores``, one per distinct key (its first occurrence), best rank-sum first.

    The rank-sums are those of the distinct keys' scores among themselves: a key that occurs several
    times is ranked once, with the score at its first occurrence. Among equal rank-sums the key
    that occurs first comes first; bad scores come last. ``rule`` and ``extra`` (one mapping per
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
    if extra is not None and len(extra) != len(scores):
        raise ValueError(f"{len(extra)} extra-term mappings for {len(scores)} scores")
    positions = first_occurrences(keys)
    distinct_extra = None if extra is None else [extra[p] for p in positions]
    sums = rank_sums([scores[p] for p in positions], rule, distinct_extra)
    return [positions[i] for i in sorted(range(len(positions)), key=lambda i: (sums[i], i))]


def best_distinct_index(
    keys: Sequence[Hashable],
    scores: Sequence[TEGScore],
    rule: RankRule | None = None,
    extra: Sequence[Mapping[str, float]] | None = None,
) -> int:
    """Position of the best of the distinct keys by rank-sum (:func:`distinct_order`'s first);
    raises ``ValueError`` on an empty list."""
    if not scores:
        raise ValueError("cannot pick the best of no scores")
    return distinct_order(keys, scores, rule, extra)[0]
