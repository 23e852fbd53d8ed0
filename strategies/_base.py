"""The ask/tell contract shared by every TEG-guided search strategy."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from teg_plugin.scores import TEGScore, best_index

if TYPE_CHECKING:
    from typing import Self

    # Type-only: importing teg_plugin.spaces at run time would pull in torch (the networks).
    from teg_plugin.spaces._base import SearchSpace

ArchT = TypeVar("ArchT", bound=Hashable)


class Strategy(ABC, Generic[ArchT]):
    """A search over ``space`` that proposes architectures (:meth:`ask`) and learns from their TEG
    scores (:meth:`tell`).

    Contract:

    * **Deterministic.** The same constructor arguments and the same sequence of asks and tells give
      the same proposals. Each ask draws from its own ``random.Random`` seeded with ``(seed, #tells,
      #asks since the last tell)``; nothing global is touched.
    * **Resumable.** A fresh strategy with the same arguments that :meth:`replay`-s the history of a
      run in which every ask was told before the next ask (a sequential study) asks exactly what the
      original would have asked next. After parallel asks, it asks what a strategy that had only seen
      those tells would ask.
    * **Loose interleaving.** Several asks may precede their tells (parallel workers get different
      proposals), tells may come in any order, and an architecture that was never asked (another
      worker's, a user's) may be told too.
    * **Training-free.** Strategies see TEG scores only, never benchmark accuracies.

    Subclasses implement :meth:`_propose` (and :meth:`_observe` if they learn from tells).

    Example:
        >>> from teg_plugin.scores import TEGScore
        >>> from teg_plugin.strategies import RandomStrategy
        >>> from teg_plugin.spaces import NB201Space
        >>> strategy = RandomStrategy(NB201Space(), seed=0)
        >>> for _ in range(3):
        ...     arch = strategy.ask()
        ...     strategy.tell(arch, TEGScore(ntk_cond=10.0, regions=50.0, kr_mse=0.1))
        >>> strategy.best() in [arch for arch, _ in strategy.history]
        True
    """

    def __init__(self, space: SearchSpace[ArchT], *, seed: int = 0) -> None:
        self._space = space
        self._seed = int(seed)
        self._history: list[tuple[ArchT, TEGScore]] = []
        self._asks_since_tell = 0

    @property
    def space(self) -> SearchSpace[ArchT]:
        """The search space."""
        return self._space

    @property
    def seed(self) -> int:
        """The seed all of this strategy's randomness derives from."""
        return self._seed

    @property
    def history(self) -> list[tuple[ArchT, TEGScore]]:
        """Every told ``(arch, score)``, in tell order (a copy)."""
        return list(self._history)

    def ask(self) -> ArchT:
        """The next architecture to score."""
        rng = random.Random(f"{self._seed}:{len(self._history)}:{self._asks_since_tell}")
        self._asks_since_tell += 1
        return self._propose(rng)

    def tell(self, arch: ArchT, score: TEGScore) -> None:
        """Record the TEG score of ``arch`` (asked or not); a ``bad`` score is accepted and ranks last."""
        if not isinstance(score, TEGScore):
            raise TypeError(f"tell expects a TEGScore, got {type(score).__name__}")
        self._history.append((arch, score))
        self._asks_since_tell = 0
        self._observe(arch, score)

    def replay(self, history: Iterable[tuple[ArchT, TEGScore]]) -> Self:
        """Tell every ``(arch, score)`` of ``history`` in order, and return ``self``.

        ``Strategy(space, seed=s).replay(old.history)`` rebuilds ``old``'s state, e.g. to resume a study.
        """
        for arch, score in history:
            self.tell(arch, score)
        return self

    def best(self) -> ArchT:
        """The told architecture with the lowest TEG rank-sum over the whole history (the first
        among equals). Raises ``ValueError`` before the first tell."""
        if not self._history:
            raise ValueError("no architecture has been told yet")
        return self._history[best_index([score for _, score in self._history])][0]

    def is_finished(self) -> bool:
        """Whether the strategy has nothing more to propose (``False``: the caller owns the budget)."""
        return False

    @abstractmethod
    def _propose(self, rng: random.Random) -> ArchT:
        """The next proposal; ``rng`` is this ask's own generator (see the class contract)."""

    def _observe(self, arch: ArchT, score: TEGScore) -> None:  # noqa: B027 - optional hook
        """Learn from a tell (already appended to the history); the default learns nothing."""
