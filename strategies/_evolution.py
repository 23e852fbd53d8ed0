"""Regularized (aging) evolution with TEG tournaments."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic

from teg_plugin._checks import check_int
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore, best_index
from teg_plugin.strategies._base import ArchT, Strategy

if TYPE_CHECKING:
    from teg_plugin.spaces._base import SearchSpace

#: Laptop-CPU defaults (see :class:`EvolutionStrategy`); the paper uses 256 and 64 over 1000 steps.
DEFAULT_POPULATION_SIZE = 20
DEFAULT_TOURNAMENT_SIZE = 5


@dataclass(frozen=True)
class Tournament(Generic[ArchT]):
    """One evolution step: the members drawn (in draw order), the winner and its mutated child."""

    members: tuple[tuple[ArchT, TEGScore], ...]
    parent: ArchT
    child: ArchT


class EvolutionStrategy(Strategy[ArchT]):
    """Regularized evolution (Real et al. 2019) whose tournaments are won by TEG rank-sum.

    * While the population has fewer than ``population_size`` members, :meth:`ask` proposes uniform
      samples.
    * Then each ask draws ``tournament_size`` members uniformly without replacement; the parent is the
      one with the lowest rank-sum **computed among the tournament's members only** (a ``bad`` member
      never wins unless all are bad; ties go to the first drawn), and the proposal is
      ``space.mutate(parent)``.
    * Every told architecture joins the population (asked or not); once it is full, the oldest member
      dies. :meth:`best` is the lowest rank-sum over the whole history, not just the population.

    Defaults: the paper runs 1000 steps with P=256, S=64. On a laptop CPU a search scores ~100-200
    architectures, so P=20 (a random warm-up of 10-20% of such a budget, leaving 80-180 evolution
    steps that renew the population 4-9 times) and S=5, which keeps the paper's selection pressure
    S/P = 1/4. Each step scores one architecture, so budget (= number of tells) is the caller's choice.

    Args:
        space: the search space.
        seed: seed of all randomness.
        population_size: P, the number of living members.
        tournament_size: S, the members drawn per tournament (1 <= S <= P).
        rule: how tournaments and :meth:`best` rank (default: the paper's rank-sum).
        proxy_values: the zero-cost proxies of an architecture, ``arch -> {name: value}``, for a
            ``rule`` that names any (see :class:`Strategy`).

    Raises:
        TypeError: a size or the seed is not an int.
        ValueError: ``population_size < 1`` or ``tournament_size`` outside ``[1, population_size]``.

    Example:
        >>> from teg_plugin.scores import TEGScore
        >>> from teg_plugin.spaces import NB201Space
        >>> evo = EvolutionStrategy(NB201Space(), seed=0, population_size=4, tournament_size=2)
        >>> for step in range(6):
        ...     evo.tell(evo.ask(), TEGScore(ntk_cond=10.0 + step, regions=50.0, kr_mse=0.1))
        >>> len(evo.population)
        4
    """

    def __init__(
        self,
        space: SearchSpace[ArchT],
        *,
        seed: int = 0,
        population_size: int = DEFAULT_POPULATION_SIZE,
        tournament_size: int = DEFAULT_TOURNAMENT_SIZE,
        rule: RankRule = PAPER_RULE,
        proxy_values: Callable[[ArchT], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(space, seed=seed, rule=rule, proxy_values=proxy_values)
        population_size = check_int("population_size", population_size, minimum=1)
        tournament_size = check_int("tournament_size", tournament_size)
        if not 1 <= tournament_size <= population_size:
            raise ValueError(
                f"tournament_size must be between 1 and population_size={population_size}, got {tournament_size}"
            )
        self._population_size = population_size
        self._tournament_size = tournament_size
        self._population: deque[tuple[ArchT, TEGScore]] = deque(maxlen=population_size)
        self._last_tournament: Tournament[ArchT] | None = None

    @property
    def population_size(self) -> int:
        """P."""
        return self._population_size

    @property
    def tournament_size(self) -> int:
        """S."""
        return self._tournament_size

    @property
    def population(self) -> tuple[tuple[ArchT, TEGScore], ...]:
        """The living members, oldest first."""
        return tuple(self._population)

    @property
    def last_tournament(self) -> Tournament[ArchT] | None:
        """The tournament of the latest evolution ask (``None`` during the random warm-up)."""
        return self._last_tournament

    def _propose(self, rng: random.Random) -> ArchT:
        if len(self._population) < self._population_size:
            self._last_tournament = None
            return self._space.sample(rng)
        drawn = rng.sample(range(len(self._population)), self._tournament_size)
        members = tuple(self._population[i] for i in drawn)
        archs = [arch for arch, _ in members]
        parent = archs[best_index([score for _, score in members], self._rule, self.extra_values(archs))]
        child = self._space.mutate(parent, rng)
        self._last_tournament = Tournament(members=members, parent=parent, child=child)
        return child

    def _observe(self, arch: ArchT, score: TEGScore) -> None:
        self._population.append((arch, score))  # the deque's maxlen drops the oldest
