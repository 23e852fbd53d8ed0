"""The ask/tell contract shared by every TEG-guided search strategy."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

from teg_plugin._checks import check_int
from teg_plugin.scores import COMPLEXITY, PAPER_RULE, RankRule, TEGScore, distinct_order

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
    * **Training-free.** Strategies see TEG scores (and, for a rule naming proxies, zero-cost proxy
      values) only, never benchmark accuracies.
    * **One ranking.** Wherever a strategy compares architectures (:meth:`best`,
      :meth:`distinct_order`, evolution's tournaments) it ranks them by ``rule`` (default: the
      paper's rank-sum; see :class:`~teg_plugin.scores.RankRule`). A rule's complexity term
      ``params`` is :meth:`~teg_plugin.spaces.SearchSpace.complexity`, which the strategy computes
      itself (zero-cost: the network is built, never run); its zero-cost proxies come from the
      ``proxy_values`` callable (e.g. built on :class:`~teg_plugin.proxies.ProxyScorer`: the
      strategies import neither the proxies nor torch). Each architecture's are computed once per
      strategy, when it is first ranked.

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

    def __init__(
        self,
        space: SearchSpace[ArchT],
        *,
        seed: int = 0,
        rule: RankRule = PAPER_RULE,
        proxy_values: Callable[[ArchT], Mapping[str, float]] | None = None,
    ) -> None:
        """``proxy_values(arch)`` gives the zero-cost proxies of ``arch``, name -> value (NaN where
        undefined), at least those ``rule`` names (:attr:`RankRule.proxies
        <teg_plugin.scores.RankRule.proxies>`); it is needed exactly when the rule names one, and
        called at most once per architecture.

        Raises:
            TypeError: ``space`` is not a :class:`~teg_plugin.spaces.SearchSpace`, ``seed`` is not
                an int (bools and floats are refused, numpy integers accepted), ``rule`` is not a
                :class:`~teg_plugin.scores.RankRule` or ``proxy_values`` is not callable.
            ValueError: ``rule`` names a proxy and ``proxy_values`` is ``None``.
        """
        # Imported here, not at module level: teg_plugin.spaces pulls in torch (the networks), and a
        # caller holding a space has imported it already.
        from teg_plugin.spaces._base import SearchSpace

        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace (e.g. NB201Space()), got {space!r}")
        self._space = space
        self._seed = check_int("seed", seed)
        if not isinstance(rule, RankRule):
            raise TypeError(f"rule must be a RankRule (e.g. RankRule.parse('ntk_cond,regions,kr_mse')), got {rule!r}")
        if proxy_values is not None and not callable(proxy_values):
            raise TypeError(f"proxy_values must be a callable arch -> {{proxy: value}}, got {proxy_values!r}")
        if rule.proxies and proxy_values is None:
            raise ValueError(
                f"rank rule {rule} names the zero-cost proxies {', '.join(rule.proxies)}: pass "
                "proxy_values, a callable arch -> {proxy: value} (e.g. built on ProxyScorer)"
            )
        self._rule = rule
        self._proxy_values = proxy_values
        #: Each ranked architecture's values of the rule's extra terms (complexity, proxies).
        self._extra: dict[ArchT, dict[str, float]] = {}
        #: The type of the space's architectures; :meth:`tell` refuses anything else.
        self._arch_type = type(space.sample(random.Random(0)))
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
    def rule(self) -> RankRule:
        """How this strategy ranks architectures."""
        return self._rule

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
        """Record the TEG score of ``arch`` (asked or not); a ``bad`` score is accepted and ranks last.

        ``arch`` must be an architecture of :attr:`space` (a value of the type the space produces,
        with valid choices); text is refused, not parsed: parse it with ``strategy.space.parse``.
        A tell is atomic: when it raises, the strategy is unchanged.

        Raises:
            TypeError: ``arch`` is not of the space's architecture type, or ``score`` is not a
                :class:`~teg_plugin.scores.TEGScore`.
            ValueError: ``arch`` has the right type but is not an architecture of the space, or
                (:class:`ReinforceStrategy`) the score would make the policy non-finite.
        """
        self._check_tell(arch, score)
        self._observe(arch, score)
        self._history.append((arch, score))
        self._asks_since_tell = 0

    def replay(self, history: Iterable[tuple[ArchT, TEGScore]]) -> Self:
        """Tell every ``(arch, score)`` of ``history`` in order, and return ``self``.

        ``Strategy(space, seed=s).replay(old.history)`` rebuilds ``old``'s state, e.g. to resume a study.
        Every pair is checked as :meth:`tell` checks it before the first is told, so a malformed
        history raises (naming the bad entry) without changing the strategy.
        """
        pairs = []
        for position, pair in enumerate(history):
            try:
                arch, score = pair
            except (TypeError, ValueError):
                raise TypeError(f"replay expects (arch, score) pairs; entry {position} is {pair!r}") from None
            try:
                self._check_tell(arch, score)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"replay entry {position}: {exc}") from None
            pairs.append((arch, score))
        for arch, score in pairs:
            self.tell(arch, score)
        return self

    def best(self) -> ArchT:
        """The told architecture with the lowest rank-sum (under :attr:`rule`) among the distinct
        architectures of the whole history (each ranked once, with its first told score; the first
        told among equals): :meth:`distinct_order`'s first. Raises ``ValueError`` before the first
        tell."""
        if not self._history:
            raise ValueError("no architecture has been told yet")
        return self._history[self.distinct_order()[0]][0]

    def distinct_order(self) -> list[int]:
        """Positions in :attr:`history`, one per distinct architecture (its first tell), best
        rank-sum under :attr:`rule` first, as :func:`teg_plugin.scores.distinct_order` ranks them
        (bad scores last)."""
        archs = [arch for arch, _ in self._history]
        scores = [score for _, score in self._history]
        return distinct_order(archs, scores, self._rule, self.extra_values(archs))

    def extra_values(self, archs: Sequence[ArchT]) -> list[dict[str, float]] | None:
        """Per architecture of ``archs``, the values of :attr:`rule`'s extra terms (its complexity
        ``params`` and its proxies): :func:`~teg_plugin.scores.rank_sums`'s ``extra``; ``None``
        when the rule has none. Each architecture's are computed once per strategy.

        Raises:
            ValueError: ``proxy_values`` left out a proxy the rule names.
        """
        terms = self._rule.extra_terms
        if not terms:
            return None
        for arch in archs:
            if arch in self._extra:
                continue
            values: dict[str, float] = {}
            if self._rule.complexity:
                values[COMPLEXITY] = float(self._space.complexity(arch))
            if self._rule.proxies:
                assert self._proxy_values is not None  # refused at construction
                given = self._proxy_values(arch)
                missing = [name for name in self._rule.proxies if name not in given]
                if missing:
                    raise ValueError(f"proxy_values gave no {', '.join(missing)} for {_shown(arch)}")
                values.update((name, float(given[name])) for name in self._rule.proxies)
            self._extra[arch] = values
        return [self._extra[arch] for arch in archs]

    def is_finished(self) -> bool:
        """Whether the strategy has nothing more to propose (``False``: the caller owns the budget)."""
        return False

    @abstractmethod
    def _propose(self, rng: random.Random) -> ArchT:
        """The next proposal; ``rng`` is this ask's own generator (see the class contract)."""

    def _check_tell(self, arch: object, score: object) -> None:
        """Raise the errors :meth:`tell` documents for a bad ``arch`` or ``score``."""
        if not isinstance(score, TEGScore):
            raise TypeError(f"tell expects a TEGScore, got {type(score).__name__}")
        if not isinstance(arch, self._arch_type):
            hint = "; parse text with strategy.space.parse(text) first" if isinstance(arch, str) else ""
            raise TypeError(
                f"tell expects a {self._space.name} architecture ({self._arch_type.__name__}), "
                f"got {type(arch).__name__} {_shown(arch)}{hint}"
            )
        try:
            self._space.from_params(self._space.to_params(arch))
        except (AttributeError, LookupError, TypeError, ValueError) as exc:
            raise ValueError(f"{_shown(arch)} is not an architecture of {self._space.name}: {exc}") from None

    def _observe(self, arch: ArchT, score: TEGScore) -> None:  # noqa: B027 - optional hook
        """Learn from a tell, before it is appended to the history; the default learns nothing.

        ``arch`` and ``score`` are already checked. To keep :meth:`tell` atomic, an override that can
        raise must do so before it changes any state."""


def _shown(arch: object) -> str:
    """``arch`` for an error message, at most 120 characters."""
    text = repr(arch)
    return text if len(text) <= 120 else text[:117] + "..."
