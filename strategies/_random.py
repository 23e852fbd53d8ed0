"""Random search ranked by TEG: the baseline every guided strategy must beat."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from teg_plugin._checks import check_int
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore
from teg_plugin.strategies._base import ArchT, Strategy

if TYPE_CHECKING:
    from teg_plugin.spaces._base import SearchSpace

#: Redraws allowed, by default, to avoid proposing an already-told architecture again.
DEFAULT_MAX_REDRAWS = 100


class RandomStrategy(Strategy[ArchT]):
    """Uniform samples of the space; :meth:`best` is the lowest rank-sum among them.

    A proposal that was already told is redrawn (up to ``max_redraws`` times), so the budget is not
    spent re-scoring the same architecture; this keeps the samples uniform over the untold ones.

    Args:
        space: the search space.
        seed: seed of all randomness.
        max_redraws: redraws allowed to avoid an already-told architecture (0: plain sampling with
            replacement).
        rule: how :meth:`best` ranks (default: the paper's rank-sum).
        proxy_values: the zero-cost proxies of an architecture, ``arch -> {name: value}``, for a
            ``rule`` that names any (see :class:`Strategy`).

    Raises:
        TypeError: ``max_redraws`` or the seed is not an int.
        ValueError: ``max_redraws < 0``.

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> a, b = RandomStrategy(NB201Space(), seed=1), RandomStrategy(NB201Space(), seed=1)
        >>> [a.ask() for _ in range(3)] == [b.ask() for _ in range(3)]
        True
    """

    def __init__(
        self,
        space: SearchSpace[ArchT],
        *,
        seed: int = 0,
        max_redraws: int = DEFAULT_MAX_REDRAWS,
        rule: RankRule = PAPER_RULE,
        proxy_values: Callable[[ArchT], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(space, seed=seed, rule=rule, proxy_values=proxy_values)
        self._max_redraws = check_int("max_redraws", max_redraws, minimum=0)
        self._told: set[ArchT] = set()

    def _propose(self, rng: random.Random) -> ArchT:
        arch = self._space.sample(rng)
        for _ in range(self._max_redraws):
            if arch not in self._told:
                break
            arch = self._space.sample(rng)
        return arch

    def _observe(self, arch: ArchT, score: TEGScore) -> None:
        self._told.add(arch)
