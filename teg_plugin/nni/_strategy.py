"""NNI 3.0 multi-trial strategies that run teg-plugin's own search algorithms.

The algorithm is the ask/tell :class:`~teg_plugin.strategies.Strategy` of
:mod:`teg_plugin.strategies`; the NNI strategy only turns each proposal into a model of the model
space, submits it to NNI's engine, and tells the algorithm the T/E/G that the model's final result
(a ``FinalMetric`` event, reported by :class:`~teg_plugin.nni.TEGEvaluator`) carries.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from nni.mutable import Categorical
from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy import Strategy as NNIStrategy

from teg_plugin._checks import check_int
from teg_plugin.confirm import Confirmation, FinalChoice, confirm, top_candidates
from teg_plugin.nni._hints import model_space_hint
from teg_plugin.nni._user_space import NNIChoiceSpace, space_from_model_space
from teg_plugin.nni.metrics import score_from_metrics
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore, as_rank_rule, distinct_order
from teg_plugin.spaces import SearchSpace, get_space
from teg_plugin.strategies import Strategy as TEGAlgorithm
from teg_plugin.strategies import make_strategy
from teg_plugin.strategies._evolution import DEFAULT_POPULATION_SIZE, DEFAULT_TOURNAMENT_SIZE
from teg_plugin.strategies._factory import strategy_key
from teg_plugin.strategies._random import DEFAULT_MAX_REDRAWS
from teg_plugin.strategies._reinforce import DEFAULT_BASELINE_MOMENTUM, DEFAULT_LEARNING_RATE

_logger = logging.getLogger(__name__)

#: The algorithms :class:`TEGStrategy` runs (pruning scores supernets, not submitted models: :class:`~teg_plugin.nni.TEGPruning`).
NNI_STRATEGY_NAMES: tuple[str, ...] = ("random", "evolution", "reinforce")


class TEGStrategy(NNIStrategy):
    """Runs the teg-plugin algorithm ``name`` as an NNI multi-trial strategy.

    Each step asks the algorithm for an architecture, freezes the model space at its sample (one
    label per choice of ``space``; with ``space=None``, the space read from the model space itself by
    :func:`~teg_plugin.nni.space_from_model_space` when the experiment starts), submits the model,
    and, when the model's final result arrives,
    tells the algorithm its T/E/G (read from the result dict; a model that ends without a result is
    told as ``bad``). With several trials at once (a training-service engine with
    ``trial_concurrency > 1``), several asks precede their tells, which every algorithm supports.

    The run stops when ``budget`` models have been submitted, when the engine's budget
    (``max_trial_number`` / ``max_experiment_duration``) is spent, or when the algorithm is finished;
    set at least one of them. A repeated proposal is submitted like any other (the evaluator's
    scorer returns its score without measuring it again) so that the algorithm runs unchanged.

    :meth:`list_models` (and so ``NasExperiment.export_top_models``) ranks the models by their exact
    rank-sum under ``rule`` among all results, recomputed from the indicators (an architecture
    once), not by the ``default`` each model reported.

    **Rank rule.** ``rule`` (a :class:`~teg_plugin.scores.RankRule` or its text, e.g. ``"nwot"`` or
    ``"ntk_cond,regions,kr_mse,synflow=0.5"``; default: the paper's rank-sum) is how the algorithm
    ranks (evolution's tournaments, :meth:`best`, :meth:`list_models`, the final choice's
    candidates). The zero-cost proxies it names are computed, once per architecture, by the scorer
    of the experiment's :class:`~teg_plugin.nni.TEGEvaluator` (or ``final_choice.scorer``), which
    must then be a :class:`~teg_plugin.scorer.TEGScorer` of a registered space: checked when the
    experiment starts. Give the evaluator ``proxies=`` with the same names and its results carry
    them too, computed once (the scorer caches them).

    Args:
        name: ``"random"``, ``"evolution"`` or ``"reinforce"``.
        space: the teg-plugin search space (name or object) whose choices the model space's labels
            are, or ``None`` for any model space (``LayerChoice``, ``InputChoice``, ``nni.choice``;
            see :func:`~teg_plugin.nni.space_from_model_space`; its architectures are then
            :class:`~teg_plugin.spaces.ChoiceArch` mappings label -> option, and :attr:`space` and
            :attr:`algorithm` exist once the experiment has started).
        seed: seed of all the algorithm's randomness.
        budget: models to submit at most (``None``: only the engine's budget).
        final_choice: after the search, re-rank its best candidates over further score seeds
            (:class:`~teg_plugin.confirm.FinalChoice`; its scorer defaults to the experiment's
            :class:`~teg_plugin.nni.TEGEvaluator`'s, which must then score a teg-plugin space such
            as NB201 or DARTS). :meth:`best` and :meth:`list_models` then put its pick first, and
            :attr:`final` holds the outcome. ``None``: the search's own best.
        rule: how the algorithm ranks (see above); ``None``: the paper's rank-sum.
        **options: options of the algorithm (e.g. ``population_size=32``), see :func:`make_strategy`.

    Raises:
        ValueError: an unknown ``name``, a ``budget`` below 1, or a ``rule`` that does not parse.
        TypeError: ``name`` is not a str, ``seed`` or ``budget`` is not an int, or ``rule`` is
            neither a RankRule, a str nor ``None``.
    """

    def __init__(
        self,
        name: str = "evolution",
        *,
        space: SearchSpace | str | None = "nas-bench-201",
        seed: int = 0,
        budget: int | None = None,
        final_choice: FinalChoice | None = None,
        rule: RankRule | str | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        if final_choice is not None and not isinstance(final_choice, FinalChoice):
            raise TypeError(f"final_choice must be a teg_plugin.confirm.FinalChoice or None, got {final_choice!r}")
        #: How the algorithm ranks.
        self.rule = as_rank_rule(rule)
        self.final_choice = final_choice
        #: The outcome of the final choice, once made.
        self.final: Confirmation | None = None
        key = strategy_key(name, self._algorithm_names, hint=self._name_hint)
        checked_seed = check_int("seed", seed)
        checked_budget = None if budget is None else check_int("budget", budget, minimum=1)
        self.name = key
        #: Whether the space is read from the model space when the experiment starts (``space=None``).
        self.derive_space = space is None
        self.space: SearchSpace | None = get_space(space) if isinstance(space, str) else space
        self.seed = checked_seed
        self.budget = checked_budget
        self.options = dict(options)
        self.algorithm: TEGAlgorithm | None = None
        if self.space is not None:
            self.algorithm = self._new_algorithm()
        #: A checkpoint loaded before the space is known (``space=None``), replayed at initialisation.
        self._pending_state: dict | None = None
        self._lock = threading.RLock()
        #: id(model) -> (model, arch) for submitted models that have no result yet.
        self._running: dict[int, tuple[ExecutableModelSpace, Hashable]] = {}
        #: The same for models whose training ended successfully before their final result arrived
        #: (NNI's training-service engine may deliver the two events in either order).
        self._awaiting_result: dict[int, tuple[ExecutableModelSpace, Hashable]] = {}
        #: Every told (model or None, arch, score), in tell order.
        self._results: list[tuple[ExecutableModelSpace | None, Hashable, TEGScore]] = []
        self._submitted = 0

    #: The algorithm names this class runs, and what an unknown name's error adds.
    _algorithm_names: tuple[str, ...] = NNI_STRATEGY_NAMES
    _name_hint = "supernet pruning scores supernets, not submitted models: use TEGPruning"

    def _new_algorithm(self) -> TEGAlgorithm | None:
        """A fresh algorithm over :attr:`space` (``None`` while it cannot be made yet)."""
        assert self.space is not None
        return make_strategy(
            self.name, self.space, seed=self.seed, rule=self.rule, proxy_values=self._proxy_values, **self.options
        )

    def _scorer(self) -> Any:
        """The scorer of the final choice and of the rule's proxies: ``final_choice.scorer``, else
        the experiment's evaluator's (``None`` before the experiment is attached, or without one)."""
        if self.final_choice is not None and self.final_choice.scorer is not None:
            return self.final_choice.scorer
        return getattr(getattr(self._model_space, "evaluator", None), "scorer", None)

    def _proxy_scorer(self) -> TEGScorer:
        """The :meth:`_scorer` that computes the rule's proxies; ``ValueError`` if there is none."""
        scorer = self._scorer()
        if not isinstance(scorer, TEGScorer) or self.space is None or scorer.space.name != self.space.name:
            space = "the space" if self.space is None else self.space.name
            raise ValueError(
                f"TEG strategy: rank rule {self.rule} names the proxies {', '.join(self.rule.proxies)}, which need "
                f"a TEGScorer of {space}: the experiment's TEGEvaluator(space=...) of a registered space, or "
                "FinalChoice(scorer=...)"
            )
        return scorer

    def _proxy_values(self, arch: Hashable) -> dict[str, float]:
        """The algorithm's ``proxy_values``: the rule's proxies of ``arch``, by :meth:`_proxy_scorer`."""
        return self._proxy_scorer().proxies([arch], self.rule.proxies)[0]

    def _derive_space(self, model_space: ExecutableModelSpace) -> SearchSpace:
        """``space=None``: the search space read from the experiment's model space."""
        return space_from_model_space(model_space)

    def extra_repr(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.options.items())
        if self.rule != PAPER_RULE:
            options = f", rule={str(self.rule)!r}" + options
        space = None if self.space is None else self.space.name
        return f"{self.name!r}, space={space!r}, seed={self.seed}, budget={self.budget}{options}"

    # -- NNI hooks -------------------------------------------------------------------------------

    def _initialize(self, model_space: ExecutableModelSpace, engine: ExecutionEngine) -> ExecutableModelSpace:
        if self.derive_space:
            if self.space is None:
                self.space = self._derive_space(model_space)
                self.algorithm = self._new_algorithm()
                _logger.info("TEG strategy: searching %s, choices %s", self.space.name, self.space.choices())
        else:
            assert self.space is not None
            _check_labels(model_space, self.space)
        if self.rule.proxies:
            self._proxy_scorer()  # refuse now, not at the first tournament, an experiment without one
        self._prepare(model_space)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            self.load_state_dict(state)
        if self.budget is None and _engine_is_unbounded(engine):
            _logger.warning(
                "TEG strategy: no budget is set (neither the strategy's `budget` nor the experiment's "
                "max_trial_number / max_experiment_duration), so the search runs until it is stopped"
            )
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        engine.register_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)
        return model_space

    def _prepare(self, model_space: ExecutableModelSpace) -> None:
        """Anything a subclass needs once the space is known, before a checkpoint is replayed."""

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        self.engine.unregister_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)

    def _run(self) -> None:
        assert self.space is not None and self.algorithm is not None
        previous_parameter = _trial_parameter_record()
        try:
            while not self.algorithm.is_finished():
                if self.budget is not None and self._submitted >= self.budget:
                    _logger.info("TEG strategy: budget of %d models reached", self.budget)
                    break
                if not self.wait_for_resource():
                    _logger.info("TEG strategy: the engine's budget is spent")
                    break
                with self._lock:
                    arch = self.algorithm.ask()
                    model = self.model_space.freeze(self.sample_of(arch))
                    self._running[id(model)] = (model, arch)
                    self._submitted += 1
                _logger.info("TEG strategy: submitting %s", self.space.format(arch))
                self.engine.submit_models(model)
            self.engine.wait_models()
        finally:
            self._forget_leftover_parameter(previous_parameter)
            self._tell_missing_results()
        self._make_final_choice()

    def _make_final_choice(self) -> None:
        if self.final_choice is None or self.space is None or self.algorithm is None:
            return
        scorer = self._scorer()
        if not isinstance(scorer, TEGScorer) or scorer.space.name != self.space.name:
            _logger.warning(
                "TEG strategy: no final choice: it needs a TEGScorer of %s (FinalChoice(scorer=...))", self.space.name
            )
            return
        with self._lock:
            archs = [arch for _, arch, _ in self._results]
            scores = [score for _, _, score in self._results]
        candidates = top_candidates(
            self.space,
            archs,
            scores,
            self.final_choice.top,
            rule=self.algorithm.rule,
            extra=self.algorithm.extra_values(archs),
        )
        if not candidates:
            return
        known = {(self.space.format(a), scorer.config.seed): s for a, s in zip(archs, scores)}
        _logger.info(
            "TEG strategy: final choice among the best %d over %d further score seeds",
            len(candidates),
            self.final_choice.seeds,
        )
        self.final = confirm(
            scorer, candidates, seeds=self.final_choice.seeds, rule=self.final_choice.rule, known=known
        )
        _logger.info(
            "TEG strategy: final choice %s (rank %d in the search)", self.final.pick.text, self.final.pick.search_rank
        )

    def _tell_missing_results(self) -> None:
        """Tell, as bad, the models that ended successfully but whose result never arrived."""
        with self._lock:
            leftovers, self._awaiting_result = list(self._awaiting_result.values()), {}
            for model, arch in leftovers:
                _logger.warning(
                    "TEG strategy: the trial of %s ended without a result; it counts as bad", self._text(arch)
                )
                self._tell(model, arch, TEGScore.flagged("trial ended without a result"))

    def _forget_leftover_parameter(self, previous: Any) -> None:
        """NNI 3.0's sequential engine leaves the last model it ran as the process's current trial
        parameter (``nni.get_current_parameter()``): code that checks for a trial then takes the
        process for one, and ``Evaluator.mock_runtime`` refuses to run. Put back what was there
        before the run when the leftover is a model this strategy submitted."""
        import nni.trial

        record = _trial_parameter_record()
        if record is previous:
            return
        try:
            current = record["parameters"]
        except (KeyError, TypeError):
            return
        with self._lock:
            ours = any(current is model for model, _, _ in self._results) or any(
                current is model for model, _ in [*self._running.values(), *self._awaiting_result.values()]
            )
        if ours:
            nni.trial._params = previous

    def _on_final_metric(self, event: FinalMetricEvent) -> None:
        with self._lock:
            entry = self._running.pop(id(event.model), None) or self._awaiting_result.pop(id(event.model), None)
            if entry is None:
                _logger.warning("TEG strategy: a result for a model it did not submit (ignored): %s", event.model)
                return
            try:
                score = score_from_metrics(event.metric)
            except ValueError as exc:
                _logger.error("TEG strategy: %s; the model counts as bad", exc)
                score = TEGScore.flagged(f"no TEG result: {event.metric!r}")
            self._tell(entry[0], entry[1], score)

    def _on_training_end(self, event: TrainingEndEvent) -> None:
        with self._lock:
            entry = self._running.pop(id(event.model), None)
            if entry is None:  # its result came first
                return
            if event.status == ModelStatus.Trained:
                # Its result may still be on its way: told when it arrives, or as bad when the run ends.
                self._awaiting_result[id(event.model)] = entry
                return
            status = event.status.value
            _logger.warning(
                "TEG strategy: the trial of %s ended %s without a result (its trial log says why); it counts as bad",
                self._text(entry[1]),
                status,
            )
            self._tell(entry[0], entry[1], TEGScore.flagged(f"trial ended {status} without a result"))

    def _text(self, arch: Hashable) -> str:
        return self.space.format(arch) if self.space is not None else str(arch)

    def _tell(self, model: ExecutableModelSpace | None, arch: Hashable, score: TEGScore) -> None:
        assert self.algorithm is not None
        self.algorithm.tell(arch, score)
        self._results.append((model, arch, score))

    def sample_of(self, arch: Hashable) -> dict[str, Any]:
        """The NNI sample of architecture ``arch`` (what the model space is frozen with)."""
        if self.space is None:
            raise ValueError("the search space is read from the model space when the experiment starts")
        if isinstance(self.space, NNIChoiceSpace):
            return self.space.sample_of(arch)  # type: ignore[arg-type]
        return dict(self.space.to_params(arch))

    # -- results ---------------------------------------------------------------------------------

    @property
    def results(self) -> list[tuple[Hashable, TEGScore]]:
        """Every told ``(arch, score)``, in tell order."""
        with self._lock:
            return [(arch, score) for _, arch, score in self._results]

    def best(self) -> Hashable:
        """The architecture with the lowest rank-sum under :attr:`rule` among the distinct architectures of all
        results (:meth:`Strategy.best <teg_plugin.strategies.Strategy.best>`; :meth:`sample_of` gives its NNI sample). ``ValueError`` if there is no result, or every result is bad (as when every
        trial failed: :attr:`results` holds the reasons)."""
        if self.algorithm is None:
            raise ValueError("no results yet: the experiment has not started")
        with self._lock:
            scores = [score for _, _, score in self._results]
        if scores and all(score.bad for score in scores):
            raise ValueError(f"every one of the {len(scores)} results is bad; the first says: {scores[0].reason}")
        if self.final is not None:
            return self.space.parse(self.final.pick.text)  # type: ignore[union-attr]
        return self.algorithm.best()

    def list_models(self, sort: bool = True, limit: int | None = None) -> Iterator[ExecutableModelSpace]:
        """The submitted models; with ``sort``, each architecture once, ranked among the distinct
        architectures as :meth:`best` ranks them, best rank-sum under :attr:`rule` first (``bad``
        ones and architectures without a trained model left out)."""
        if not sort:
            yield from super().list_models(sort=False, limit=limit)
            return
        with self._lock:
            results = list(self._results)
            algorithm = self.algorithm
        usable: dict[Hashable, ExecutableModelSpace] = {}  # each architecture's first trained model
        for model, arch, score in results:
            if model is not None and not score.bad and model.status == ModelStatus.Trained:
                usable.setdefault(arch, model)
        archs = [arch for _, arch, _ in results]
        extra = None if algorithm is None else algorithm.extra_values(archs)
        order = distinct_order(archs, [score for _, _, score in results], self.rule, extra)
        if self.final is not None and self.space is not None:  # the final choice's pick first
            texts = [self.space.format(results[i][1]) for i in order]
            if self.final.pick.text in texts:
                order.insert(0, order.pop(texts.index(self.final.pick.text)))
        count = 0
        for i in order:
            model = usable.get(results[i][1])
            if model is None or results[i][2].bad:
                continue
            if limit is not None and count >= limit:
                return
            count += 1
            yield model

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The told results (arch strings and indicators) and the submitted count."""
        with self._lock:
            if self.space is None or self.algorithm is None:
                return dict(self._pending_state or {"results": [], "submitted": 0})
            return {
                "results": [(self.space.format(arch), score.to_dict()) for _, arch, score in self._results],
                "submitted": self._submitted,
            }

    def load_state_dict(self, state_dict: dict) -> None:
        """Rebuild the algorithm by replaying the saved results (models are not restored). With
        ``space=None`` before the experiment has started, the replay waits until it does."""
        with self._lock:
            self.algorithm = None if self.space is None else self._new_algorithm()
            if self.space is None or self.algorithm is None:
                self._pending_state = dict(state_dict)
                return
            self._results = []
            for text, values in state_dict.get("results", []):
                arch = self.space.parse(text)
                score = score_from_metrics(values)
                self._tell(None, arch, score)
            self._submitted = int(state_dict.get("submitted", len(self._results)))


class TEGRandom(TEGStrategy):
    """Random search ranked by TEG (:class:`~teg_plugin.strategies.RandomStrategy`) as an NNI strategy;
    ``rule`` as in :class:`TEGStrategy`."""

    def __init__(
        self,
        *,
        space: SearchSpace | str | None = "nas-bench-201",
        seed: int = 0,
        budget: int | None = None,
        max_redraws: int = DEFAULT_MAX_REDRAWS,
        final_choice: FinalChoice | None = None,
        rule: RankRule | str | None = None,
    ) -> None:
        super().__init__(
            "random",
            space=space,
            seed=seed,
            budget=budget,
            final_choice=final_choice,
            rule=rule,
            max_redraws=max_redraws,
        )


class TEGEvolution(TEGStrategy):
    """Regularised evolution with TEG tournaments (:class:`~teg_plugin.strategies.EvolutionStrategy`)
    as an NNI strategy; ``rule`` as in :class:`TEGStrategy`."""

    def __init__(
        self,
        *,
        space: SearchSpace | str | None = "nas-bench-201",
        seed: int = 0,
        budget: int | None = None,
        population_size: int = DEFAULT_POPULATION_SIZE,
        tournament_size: int = DEFAULT_TOURNAMENT_SIZE,
        final_choice: FinalChoice | None = None,
        rule: RankRule | str | None = None,
    ) -> None:
        super().__init__(
            "evolution",
            space=space,
            seed=seed,
            budget=budget,
            final_choice=final_choice,
            rule=rule,
            population_size=population_size,
            tournament_size=tournament_size,
        )


class TEGReinforce(TEGStrategy):
    """REINFORCE rewarded by TEG improvements (:class:`~teg_plugin.strategies.ReinforceStrategy`) as an
    NNI strategy; ``rule`` as in :class:`TEGStrategy` (the reward keeps the three indicators)."""

    def __init__(
        self,
        *,
        space: SearchSpace | str | None = "nas-bench-201",
        seed: int = 0,
        budget: int | None = None,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        baseline_momentum: float = DEFAULT_BASELINE_MOMENTUM,
        final_choice: FinalChoice | None = None,
        rule: RankRule | str | None = None,
    ) -> None:
        super().__init__(
            "reinforce",
            space=space,
            seed=seed,
            budget=budget,
            final_choice=final_choice,
            rule=rule,
            learning_rate=learning_rate,
            baseline_momentum=baseline_momentum,
        )


def _trial_parameter_record() -> Any:
    """NNI's record of the current trial parameter (``None`` outside a trial)."""
    import nni.trial

    return getattr(nni.trial, "_params", None)


def _engine_is_unbounded(engine: ExecutionEngine) -> bool:
    """Whether ``engine`` is known to have neither a model count nor a time limit.

    NNI 3.0 exposes the limits as attributes of the sequential engine, and through the experiment
    config of the training-service engine; an engine of another kind counts as bounded (no warning).
    """
    limits: tuple[Any, ...] | None = None
    if hasattr(engine, "max_model_count") and hasattr(engine, "max_duration"):
        limits = (engine.max_model_count, engine.max_duration)
    else:
        config = getattr(getattr(engine, "nodejs_binding", None), "config", None)
        if config is not None:
            limits = (getattr(config, "max_trial_number", None), getattr(config, "max_experiment_duration", None))
    return limits is not None and all(limit is None for limit in limits)


def _check_labels(model_space: ExecutableModelSpace, space: SearchSpace) -> None:
    """The model space must hold exactly one categorical choice per choice of ``space``, same options."""
    mutables: Mapping[str, Any] = model_space.simplify()
    expected = {name: tuple(options) for name, options in space.choices().items()}
    problems = []
    for name, options in expected.items():
        mutable = mutables.get(name)
        if not isinstance(mutable, Categorical):
            problems.append(f"no categorical choice labelled {name!r}")
        elif set(mutable.values) != set(options):
            problems.append(f"choice {name!r} has options {list(mutable.values)}, expected {list(options)}")
    if problems:
        raise ValueError(
            f"the model space does not match the {space.name} search space ({'; '.join(problems)}); "
            f"{model_space_hint(space.name)}pass space=None to search your own model space"
        )
