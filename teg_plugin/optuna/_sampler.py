"""TEGSampler: an Optuna sampler driven by a TEG-guided search strategy."""

from __future__ import annotations

import copy
import threading
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler, RandomSampler
from optuna.trial import TrialState

from teg_plugin._checks import check_int, check_seed
from teg_plugin._proxy_table import proxy_key
from teg_plugin.optuna._attrs import (
    checked_proxy_names,
    claim_study_rule,
    measured_user_attrs,
    score_from_user_attrs,
    write_user_attrs,
)
from teg_plugin.optuna._compat import fixed_params, keep_in_cached_trial
from teg_plugin.optuna._suggest import search_space as _search_space
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore, as_rank_rule, rank_sums
from teg_plugin.strategies import Strategy, make_strategy
from teg_plugin.strategies._factory import strategy_key

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from teg_plugin.scorer import TEGScorer
    from teg_plugin.spaces._base import SearchSpace

#: Trials whose architecture the zero-cost mode tells the strategy.
_TOLD_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
#: Extra strategy steps the guided mode may take to find an architecture no trial has had yet.
_MAX_EXTRA_GUIDED_STEPS = 1000
#: Guided mode: at most this many strategy steps per new architecture it is asked to score.
_GUIDED_STEPS_PER_CLASS = 20


class TEGSampler(BaseSampler):
    """Propose architectures of ``space`` with a TEG-guided search strategy.

    The sampler owns the parameters of :meth:`SearchSpace.choices` (the ones :func:`suggest`
    suggests); any other parameter is sampled by a seeded :class:`~optuna.samplers.RandomSampler`,
    with a one-time warning. With a :class:`TrialSpace` (a user's ``build_model(trial)``), it owns
    the parameters ``build_model`` suggests, in their own int, float or categorical distributions,
    so the objective may call ``build_model(trial)`` itself.

    **Two modes.**

    * ``steps_per_trial=1`` (**zero-cost search**): one strategy step per trial. The objective scores
      the architecture and returns TEG values (:func:`zero_cost_objective`); the strategy learns the
      TEG score of every finished (complete or pruned) trial.
    * ``steps_per_trial=k>1`` (**guided search**, for an expensive objective such as training):
      between trials the sampler itself runs ask/score/tell steps of the strategy with ``scorer``
      (cheap) until ``k`` more distinct architectures (isomorphism classes) have been scored (a
      repeated proposal costs nothing and does not count; at most 20 steps per class), and proposes
      the architecture of the strategy's history with the lowest rank-sum (under ``rule``) whose
      isomorphism class no trial has had yet. Trial values are never shown to the strategy: the
      search stays training-free whatever the objective returns.

    Either way the proposed architecture's TEG user attributes (``arch``, ``index``, ``ntk_cond``,
    ``regions``, ``kr_mse``, ``bad``) are written when it is proposed, so they exist even while the
    objective trains, and :class:`TEGPruner` can use them.

    **State comes from the study.** No search state is kept across processes: every proposal
    rebuilds the strategy from the study's trials, with a fresh strategy seeded with ``seed``.

    * Zero-cost mode tells it the architecture and TEG score of every complete or pruned trial, in
      trial-number order, then asks once for each lower-numbered trial that is running, waiting or
      failed (those hold, or are about to receive, a proposal; a failed architecture is not
      proposed again at once), then asks for this trial.
    * Guided mode replays the strategy steps of every earlier trial that had a proposal; they
      depend on nothing but ``seed`` and their number.

    A study resumed in a new process, or shared by several processes, therefore proposes exactly
    what one uninterrupted run would. A told trial's score is the one stored in its TEG user
    attributes (the study must hold one protocol: ``teg-nas search`` checks this on resume); only
    trials without them are scored by ``scorer``, whose persistent score cache
    (``TEGScorer(..., cache=path)``) then makes the rebuild free in a new process. Within a process the
    told strategy is kept and reused while the finished trials only grow.

    Deterministic: the same ``seed`` on the same sequential study gives the same parameters.
    Parallel workers (``n_jobs>1``, several processes) get different proposals as long as each
    trial is created before the next one asks; a race can repeat an architecture.

    Args:
        space: the search space (the same as the objective's).
        scorer: scores architectures of ``space``. Share it with the objective: its memo then makes
            the objective's score free.
        strategy: ``"evolution"`` (default), ``"random"``, ``"reinforce"`` or ``"prune"``
            (see :func:`teg_plugin.strategies.make_strategy`).
        seed: seed of the strategy and of the fallback sampler, ``0 .. 2**32 - 1`` (as Optuna's samplers).
        steps_per_trial: 1 for zero-cost search, ``k > 1`` for guided search.
        strategy_options: keyword arguments of the strategy (e.g. ``{"population_size": 32}``).
        warn_independent_sampling: warn (once per parameter) when a parameter outside ``space`` is
            sampled by the fallback sampler.
        proxies: zero-cost proxies (``"synflow,nwot"`` or a list, see :mod:`teg_plugin.proxies`)
            computed for each proposal too, each stored as user attribute ``proxy_<name>``.
        rule: how the strategy ranks (its tournaments, its best, the guided mode's proposals) and
            how the study ranks its trials: a :class:`~teg_plugin.scores.RankRule` or its text
            (e.g. ``"nwot"``, ``"ntk_cond,regions,kr_mse,synflow=0.5"``); ``None``: the paper's
            rank-sum. Its proxies are computed with ``scorer`` (cached) and stored in each trial
            (``proxy_<name>``, and ``complexity`` for its ``params`` term); the study records the
            rule (:func:`zero_cost_objective` must be given the same one). Not for ``"prune"``,
            which ranks each removal by the paper's rule.

    Raises:
        TypeError: ``strategy`` is not a string, ``seed`` or ``steps_per_trial`` is not an int, or
            ``strategy_options`` holds an option the strategy does not take.
        ValueError: an unknown ``strategy`` (or ``"prune"`` on a user space without a supernet builder),
            a ``seed`` outside ``0 .. 2**32 - 1``, ``steps_per_trial`` below 1, a bad option value,
            a ``scorer`` of another space, a ``rule`` that does not parse, or a rule other than the
            paper's with ``"prune"``. A study that ranks by another rule raises at the first proposal.

    Example:
        Zero-cost search (the objective returns TEG values):

        >>> import optuna
        >>> from teg_plugin.config import TEGConfig
        >>> from teg_plugin.scorer import TEGScorer
        >>> from teg_plugin.optuna import TEGSampler, zero_cost_objective, best_trial
        >>> scorer = TEGScorer("nas-bench-201", data="synthetic", device="cpu",
        ...                    config=TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2))
        >>> sampler = TEGSampler(scorer.space, scorer, seed=0, strategy_options={"population_size": 4,
        ...                                                                     "tournament_size": 2})
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(zero_cost_objective(scorer.space, scorer), n_trials=6)
        >>> sorted(best_trial(study).user_attrs)
        ['arch', 'bad', 'index', 'kr_mse', 'ntk_cond', 'regions']

        Guided search (three cheap TEG steps per expensive trial; the objective would train):

        >>> from teg_plugin.optuna import suggest
        >>> def train(trial):
        ...     arch = suggest(scorer.space, trial)
        ...     return 0.0  # train ``arch`` and return its validation accuracy
        >>> study = optuna.create_study(direction="maximize",
        ...                             sampler=TEGSampler(scorer.space, scorer, steps_per_trial=3))
        >>> study.optimize(train, n_trials=2)
        >>> len({t.user_attrs["arch"] for t in study.trials})
        2
    """

    def __init__(
        self,
        space: SearchSpace,
        scorer: TEGScorer,
        *,
        strategy: str = "evolution",
        seed: int = 0,
        steps_per_trial: int = 1,
        strategy_options: Mapping[str, Any] | None = None,
        warn_independent_sampling: bool = True,
        proxies: str | Iterable[str] = (),
        rule: RankRule | str | None = None,
    ) -> None:
        if scorer.space.name != space.name:
            raise ValueError(f"the scorer scores {scorer.space.name!r} but the sampler searches {space.name!r}")
        steps_per_trial = check_int("steps_per_trial", steps_per_trial, minimum=1)
        strategy = strategy_key(strategy)
        seed = check_seed("seed", seed)  # the fallback RandomSampler takes 0 .. 2**32 - 1
        if strategy == "prune" and not space.has_supernet:
            raise ValueError(
                f"strategy 'prune' prunes a supernet, and the space {space.name!r} has none: give the space a "
                "supernet builder (ChoiceSpace/TrialSpace(..., supernet=...)) or use 'evolution', 'random' or 'reinforce'"
            )
        self._rule = as_rank_rule(rule)
        if strategy == "prune" and self._rule != PAPER_RULE:
            raise ValueError(
                f"rule {self._rule}: strategy 'prune' ranks each removal by the paper's rule; a rule sets how "
                "'evolution', 'reinforce' and 'random' rank"
            )
        options = dict(strategy_options or {})
        if {"rule", "proxy_values"} & set(options):
            raise TypeError("pass the rank rule as TEGSampler(..., rule=...), not in strategy_options")
        self._proxies = checked_proxy_names(proxies)
        self._space = space
        self._scorer = scorer
        self._steps = steps_per_trial
        self._scores = _ScoreMemo(scorer, self._rule)
        strategies = _StrategyMaker(space, scorer, strategy, seed, options, self._rule, self._scores)
        strategies.make()  # fail now, not in the first trial, on a bad option
        self._distributions = _search_space(space)
        self._random = RandomSampler(seed=seed)
        self._warn_independent = warn_independent_sampling
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        archs = _TrialArchs(space, tuple(self._distributions))
        #: Where the proposals come from: one strategy step per trial, or ``steps_per_trial`` steps.
        self._policy: _ZeroCostPolicy | _GuidedPolicy = (
            _ZeroCostPolicy(strategies, archs, self._scores)
            if steps_per_trial == 1
            else _GuidedPolicy(strategies, archs, self._scores, steps_per_trial)
        )

    @property
    def space(self) -> SearchSpace:
        """The search space."""
        return self._space

    @property
    def scorer(self) -> TEGScorer:
        """The scorer of every TEG value this sampler uses."""
        return self._scorer

    @property
    def rule(self) -> RankRule:
        """How the strategy and the study rank architectures."""
        return self._rule

    @property
    def steps_per_trial(self) -> int:
        """Strategy steps per trial (1: zero-cost search; more: guided search)."""
        return self._steps

    def reseed_rng(self) -> None:
        """Reseed the fallback sampler. The strategy's seed stays: it is what lets every worker and
        every resumed process rebuild the same search from the study."""
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        """The space's distributions (:func:`search_space`), known from trial 0 on."""
        return dict(self._distributions)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """The next architecture of the strategy as parameters; writes its TEG user attributes."""
        if not search_space or any(name not in search_space for name in self._distributions):
            return {}
        claim_study_rule(study, self._rule, who="TEGSampler")
        with self._lock:
            arch = self._policy.propose(study.get_trials(deepcopy=False), trial)
        params = self._space.to_params(arch)
        fixed = fixed_params(trial)
        final: Hashable | None = arch
        if any(name in fixed for name in params):  # an enqueued trial: Optuna uses its fixed values
            try:
                final = self._space.from_params({name: fixed.get(name, value) for name, value in params.items()})
            except ValueError:
                final = None
        if final is not None:
            self._write_attrs(study, trial, final)
        return {name: value for name, value in params.items() if name in search_space and name not in fixed}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """Sample a parameter outside the search space with the seeded fallback RandomSampler."""
        if self._warn_independent and param_name not in self._warned:
            self._warned.add(param_name)
            reason = (
                f"it is not a choice of the {self._space.name} search space"
                if param_name not in self._distributions
                else "its distribution differs from the search space's"
            )
            warnings.warn(
                f"The parameter {param_name!r} in trial #{trial.number} is sampled independently by "
                f"RandomSampler instead of TEGSampler because {reason}. Pass "
                "warn_independent_sampling=False to TEGSampler if this is intended.",
                UserWarning,
                stacklevel=2,
            )
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _write_attrs(self, study: optuna.Study, trial: FrozenTrial, arch: Hashable) -> None:
        """Write the TEG user attributes (proxies, rule terms) of ``arch``, the trial's architecture."""
        score = self._scores.of([arch])[0]
        attrs = measured_user_attrs(self._scorer, arch, score, proxies=self._proxies, rule=self._rule)
        write_user_attrs(study, trial, attrs, trial.user_attrs)
        keep_in_cached_trial(trial, attrs)


# -- what both modes share -------------------------------------------------------------------------


class _ScoreMemo:
    """Scores (and the rule's proxies) from the scorer, remembered per architecture (no canonical
    form to recompute when a study is replayed)."""

    def __init__(self, scorer: TEGScorer, rule: RankRule) -> None:
        self._scorer = scorer
        self._proxy_names = rule.proxies
        self._scores: dict[Hashable, TEGScore] = {}
        self._proxies: dict[Hashable, dict[str, float]] = {}

    def of(self, archs: Sequence[Hashable]) -> list[TEGScore]:
        """The scores of ``archs``; those not known yet are scored in one call."""
        missing = [arch for arch in dict.fromkeys(archs) if arch not in self._scores]
        if missing:
            for arch, score in zip(missing, self._scorer.score_many(missing), strict=True):
                self._scores[arch] = score
        return [self._scores[arch] for arch in archs]

    def remember(self, arch: Hashable, score: TEGScore) -> None:
        """Take ``score`` as ``arch``'s score unless one is known already (a trial's stored score)."""
        self._scores.setdefault(arch, score)

    def proxies_of(self, arch: Hashable) -> dict[str, float]:
        """The rule's proxies of ``arch`` (the strategy's ``proxy_values``), computed once."""
        if arch not in self._proxies:
            self._proxies[arch] = self._scorer.proxies([arch], self._proxy_names)[0]
        return self._proxies[arch]

    def remember_proxies(self, arch: Hashable, user_attrs: Mapping[str, Any]) -> None:
        """Take the rule's proxies stored in a trial's user attributes as ``arch``'s, when it stores
        every one (``None``: flagged, NaN)."""
        keys = {name: proxy_key(name) for name in self._proxy_names}
        if arch in self._proxies or not keys or any(key not in user_attrs for key in keys.values()):
            return
        stored = {name: user_attrs[key] for name, key in keys.items()}
        self._proxies[arch] = {name: float("nan") if value is None else float(value) for name, value in stored.items()}


class _StrategyMaker:
    """Makes fresh strategies, all alike: the sampler's strategy, seed and options."""

    def __init__(
        self,
        space: SearchSpace,
        scorer: TEGScorer,
        name: str,
        seed: int,
        options: dict[str, Any],
        rule: RankRule,
        memo: _ScoreMemo,
    ) -> None:
        self.space = space
        self.scorer = scorer
        self._name = name
        self._seed = seed
        self._options = options
        self._rule = rule
        self._memo = memo

    def make(self) -> Strategy:
        # Per-repeat supernet scores let pruning compare repeat by repeat (TE-NAS); a scorer without
        # them (a user's own) prunes on its mean scores.
        score_mask = getattr(self.scorer, "score_mask_repeats", None) or self.scorer.score_mask
        return make_strategy(
            self._name,
            self.space,
            seed=self._seed,
            score_mask=score_mask,
            rule=self._rule,
            proxy_values=self._memo.proxies_of,
            **self._options,
        )


class _TrialArchs:
    """The architectures of trials: read from their parameters, and their isomorphism classes."""

    def __init__(self, space: SearchSpace, names: tuple[str, ...]) -> None:
        self._space = space
        self._names = names
        self._canonical: dict[Hashable, Hashable] = {}

    def of(self, trial: FrozenTrial) -> Hashable | None:
        """The architecture a trial's parameters describe, or ``None`` if they do not name one."""
        params = trial.params
        if any(name not in params for name in self._names):
            return None
        try:
            return self._space.from_params({name: params[name] for name in self._names})
        except ValueError:
            return None

    def canonical(self, arch: Hashable) -> Hashable:
        """``arch``'s isomorphism class (its canonical form), remembered."""
        if arch not in self._canonical:
            self._canonical[arch] = self._space.canonical(arch)
        return self._canonical[arch]


# -- zero-cost mode --------------------------------------------------------------------------------


class _ZeroCostPolicy:
    """One strategy step per trial, replayed from the study: the strategy is told every finished
    trial's architecture and score, asked once per earlier unfinished trial, then asked for this one."""

    def __init__(self, strategies: _StrategyMaker, archs: _TrialArchs, scores: _ScoreMemo) -> None:
        self._strategies = strategies
        self._archs = archs
        self._scores = scores
        #: (numbers of the told trials, the strategy that was told them and never asked).
        self._snapshot: tuple[tuple[int, ...], Strategy] | None = None
        #: Whether a later proposal starts from the snapshot (tests compare with a rebuilt strategy).
        self.use_snapshot = True

    def propose(self, trials: Sequence[FrozenTrial], trial: FrozenTrial) -> Hashable:
        """The architecture for ``trial``, given every trial of the study."""
        told: list[tuple[int, Hashable]] = []
        pending = 0
        for other in trials:
            if other.number == trial.number:
                continue
            if other.state in _TOLD_STATES:
                arch = self._archs.of(other)
                if arch is not None:
                    told.append((other.number, arch))
                    stored = score_from_user_attrs(other.user_attrs)
                    if stored is not None:  # what the objective measured: no need to score it again here
                        self._scores.remember(arch, stored)
                        self._scores.remember_proxies(arch, other.user_attrs)
            elif other.number < trial.number:
                pending += 1  # running, waiting or failed: it holds (or will get) an earlier proposal
        told.sort(key=lambda pair: pair[0])
        strategy = self._replayed(told)
        for _ in range(pending):
            strategy.ask()
        return strategy.ask()

    def _replayed(self, told: list[tuple[int, Hashable]]) -> Strategy:
        """A strategy told ``told`` in order and never asked (a copy the caller may ask)."""
        numbers = tuple(number for number, _ in told)
        base: Strategy | None = None
        new = told
        if self.use_snapshot and self._snapshot is not None:
            known, strategy = self._snapshot
            if numbers[: len(known)] == known:
                base, new = strategy, told[len(known) :]
        if base is None:
            base = self._strategies.make()
        archs = [arch for _, arch in new]
        base.replay(zip(archs, self._scores.of(archs), strict=True))
        self._snapshot = (numbers, base)
        # The snapshot must stay un-asked: hand out a copy. It shares the space, the scorer and the
        # told (arch, score) pairs, which are immutable, so copying costs little.
        space, scorer = self._strategies.space, self._strategies.scorer
        # The score memo (behind a rule's proxy_values) stays shared too.
        memo: dict[int, Any] = {id(space): space, id(scorer): scorer, id(self._scores): self._scores}
        for pair in base.history:
            memo[id(pair)] = pair
            memo[id(pair[0])] = pair[0]
            memo[id(pair[1])] = pair[1]
        return copy.deepcopy(base, memo)


# -- guided mode -----------------------------------------------------------------------------------


class _GuidedPolicy:
    """``steps_per_trial`` ask/score/tell strategy steps per trial, taken by the sampler itself; each
    trial gets the best architecture of the steps so far that no trial has had. The steps depend on
    nothing but the seed and their number: a rebuilt sampler replays them."""

    def __init__(
        self, strategies: _StrategyMaker, archs: _TrialArchs, scores: _ScoreMemo, steps_per_trial: int
    ) -> None:
        self._strategies = strategies
        self._archs = archs
        self._scores = scores
        self._steps_per_trial = steps_per_trial
        self._strategy: Strategy | None = None
        #: Every (arch, score) step the strategy has taken, in order.
        self.history: list[tuple[Hashable, TEGScore]] = []
        self._classes: set[Hashable] = set()
        #: The step at which each new isomorphism class was first scored.
        self._first_seen: list[int] = []

    def propose(self, trials: Sequence[FrozenTrial], trial: FrozenTrial) -> Hashable:
        """The architecture for ``trial``, given every trial of the study."""
        rounds = 0
        proposed: set[Hashable] = set()
        for other in trials:
            if other.number == trial.number:
                continue
            arch = self._archs.of(other)
            if arch is not None:
                proposed.add(self._archs.canonical(arch))
            if other.number < trial.number and (arch is not None or not other.state.is_finished()):
                rounds += 1  # it had (or is about to get) a proposal
        end = self._window(self._steps_per_trial * (rounds + 1))
        window = self.history[:end]
        assert self._strategy is not None  # _window advanced it
        archs = [arch for arch, _ in window]
        sums = rank_sums([score for _, score in window], self._strategy.rule, self._strategy.extra_values(archs))
        for i in sorted(range(len(window)), key=lambda i: (sums[i], i)):
            if self._archs.canonical(window[i][0]) not in proposed:
                return window[i][0]
        for step in range(end, end + _MAX_EXTRA_GUIDED_STEPS):
            self._advance(step + 1)
            arch = self.history[step][0]
            if self._archs.canonical(arch) not in proposed:
                return arch
        warnings.warn(
            f"TEGSampler found no architecture that no trial has had after {end + _MAX_EXTRA_GUIDED_STEPS} "
            "strategy steps; proposing the best one again",
            UserWarning,
            stacklevel=3,
        )
        best = min(range(len(window)), key=lambda i: (sums[i], i))
        return window[best][0]

    def _window(self, n_classes: int) -> int:
        """How many steps it takes to score ``n_classes`` distinct architectures (isomorphism
        classes; a repeated proposal costs nothing), at most ``_GUIDED_STEPS_PER_CLASS`` per class.
        A pure function of ``n_classes``: the step sequence never depends on the study."""
        cap = _GUIDED_STEPS_PER_CLASS * n_classes
        while len(self._first_seen) < n_classes and len(self.history) < cap:
            self._advance(len(self.history) + 1)
        end = cap
        if len(self._first_seen) >= n_classes:
            end = min(self._first_seen[n_classes - 1] + 1, cap)
        self._advance(end)
        return end

    def _advance(self, steps: int) -> None:
        """Run the strategy until it has taken ``steps`` ask/score/tell steps."""
        if self._strategy is None:
            self._strategy = self._strategies.make()
        while len(self.history) < steps:
            arch = self._strategy.ask()
            score = self._scores.of([arch])[0]
            self._strategy.tell(arch, score)
            canonical = self._archs.canonical(arch)
            if canonical not in self._classes:
                self._classes.add(canonical)
                self._first_seen.append(len(self.history))
            self.history.append((arch, score))
