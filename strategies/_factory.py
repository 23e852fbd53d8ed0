"""Strategies by name, for the command line and the Optuna / NNI adapters."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from teg_plugin.scores import PAPER_RULE, RankRule
from teg_plugin.strategies._base import ArchT, Strategy
from teg_plugin.strategies._evolution import EvolutionStrategy
from teg_plugin.strategies._pruning import PruningStrategy, ScoreMask
from teg_plugin.strategies._random import RandomStrategy
from teg_plugin.strategies._reinforce import ReinforceStrategy

if TYPE_CHECKING:
    from teg_plugin.spaces._base import SearchSpace

#: The names :func:`make_strategy` accepts.
STRATEGY_NAMES: tuple[str, ...] = ("random", "evolution", "reinforce", "prune")


def strategy_key(name: object, choices: Sequence[str] = STRATEGY_NAMES, *, hint: str = "") -> str:
    """The canonical form (stripped, lower-case) of the strategy name ``name``, one of ``choices``.

    Args:
        name: a strategy name as a user typed it.
        choices: the names the caller accepts (a subset of :data:`STRATEGY_NAMES`).
        hint: a sentence appended to the error for a name outside ``choices``.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``name`` is not one of ``choices``.

    Example:
        >>> strategy_key(" Evolution")
        'evolution'
        >>> strategy_key("prune", ("random", "evolution"))
        Traceback (most recent call last):
        ...
        ValueError: unknown strategy 'prune'; choose from random, evolution
    """
    listed = ", ".join(choices)
    if not isinstance(name, str):
        raise TypeError(f"strategy name must be a str, one of {listed}; got {name!r}")
    key = name.strip().lower()
    if key not in choices:
        raise ValueError(f"unknown strategy {name!r}; choose from {listed}" + (f" ({hint})" if hint else ""))
    return key


def make_strategy(
    name: str,
    space: SearchSpace[ArchT],
    *,
    seed: int = 0,
    score_mask: ScoreMask | None = None,
    rule: RankRule = PAPER_RULE,
    proxy_values: Callable[[ArchT], Mapping[str, float]] | None = None,
    **options: Any,
) -> Strategy[ArchT]:
    """The strategy called ``name`` over ``space``.

    Args:
        name: one of :data:`STRATEGY_NAMES` (case-insensitive).
        space: the search space.
        seed: seed of all the strategy's randomness.
        score_mask: supernet scorer; required by ``"prune"``, ignored by the others.
        rule, proxy_values: how the strategy ranks, and the proxies of a rule naming some (see
            :class:`~teg_plugin.strategies.Strategy`); ``"prune"`` ranks each removal by the
            paper's rule only and ignores ``proxy_values``.
        **options: keyword arguments of the strategy's constructor (e.g. ``population_size=32`` for
            ``"evolution"``, ``learning_rate=0.02`` for ``"reinforce"``).

    Raises:
        ValueError: unknown ``name``, or ``"prune"`` without ``score_mask``.
        TypeError: ``name`` is not a string, an option the strategy does not take (for ``"prune"``,
            a rule other than the paper's), and the strategy's own type errors (e.g. a ``space``
            that is not a ``SearchSpace``).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> type(make_strategy("evolution", NB201Space(), seed=3, population_size=8, tournament_size=2)).__name__
        'EvolutionStrategy'
    """
    key = strategy_key(name)
    classes = {
        "random": RandomStrategy,
        "evolution": EvolutionStrategy,
        "reinforce": ReinforceStrategy,
        "prune": PruningStrategy,
    }
    cls = classes[key]
    given = ("space", "seed", "score_mask", "rule", "proxy_values")
    accepted = [p for p in inspect.signature(cls).parameters if p not in given]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"strategy {key!r} has no option {', '.join(map(repr, unknown))}; its options: {', '.join(accepted) or 'none'}"
        )
    if key == "prune":
        if score_mask is None:
            raise ValueError("strategy 'prune' needs score_mask (a callable scoring a supernet mask)")
        if rule != PAPER_RULE:
            raise TypeError(
                f"strategy 'prune' has no option 'rule' (given {rule}): it ranks each removal by the paper's "
                "rule; a rule sets how 'evolution', 'reinforce' and 'random' rank"
            )
        return PruningStrategy(space, score_mask, seed=seed, **options)
    return cls(space, seed=seed, rule=rule, proxy_values=proxy_values, **options)
