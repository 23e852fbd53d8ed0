"""TE-NAS / TEG-NAS supernet pruning as an NNI 3.0 strategy.

The algorithm is :class:`~teg_plugin.strategies.PruningStrategy`, unchanged; this adapter gives it
the scorer of the experiment's :class:`~teg_plugin.nni.TEGEvaluator`, shows its progress, keeps its
finished rounds in NNI checkpoints, and submits the pruned architecture to NNI's engine as the
experiment's model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any

from nni.nas.space import ExecutableModelSpace

from teg_plugin._checks import check_int
from teg_plugin._progress import progress_bar
from teg_plugin.nni._evaluator import TEGEvaluator
from teg_plugin.nni._strategy import TEGStrategy
from teg_plugin.nni._user_space import NNIChoiceSpace, ThinSpace, space_from_model_space
from teg_plugin.scores import TEGScore
from teg_plugin.spaces import Mask, SearchSpace
from teg_plugin.strategies import PruningStrategy
from teg_plugin.strategies._pruning import PruneRound

#: Progress lines go to a child of NNI's ``nni`` logger, so they appear where NNI's own do: on the
#: console and in the experiment's ``experiment.log``.
progress_logger = logging.getLogger("nni.teg_plugin.pruning")


class TEGPruning(TEGStrategy):
    """TE-NAS's supernet pruning, ranked by TEG, as an NNI multi-trial strategy.

    When the experiment starts, the strategy prunes the model space's supernet down to one
    architecture, round by round (:class:`~teg_plugin.strategies.PruningStrategy`: each round scores
    the current supernet and the supernet without each remaining option, and drops the least
    important option of every choice). A supernet evaluation is a call of the evaluator's scorer,
    in this process, not an NNI trial. Then it submits the pruned architecture to NNI's engine like
    any other strategy (the evaluator scores it as a trial), so ``export_top_models`` returns it as
    NNI's sample dict, and ``model_space.freeze(sample)`` gives the model to train. With
    ``budget > 1`` it then submits the other architectures of the last round's supernet, then
    mutations of the best so far, ranked by TEG as :class:`~teg_plugin.nni.TEGStrategy` ranks.

    **Spaces.** ``space="nas-bench-201"`` (with :class:`~teg_plugin.nni.NB201ModelSpace`) or
    ``"darts"`` (:class:`~teg_plugin.nni.DartsModelSpace`) prunes teg-plugin's own supernets with
    the evaluator's :class:`~teg_plugin.scorer.TEGScorer`: the same masks, rounds and scores as
    ``teg-nas search --strategy prune``, so the same protocol and score seed give the same pick.
    ``space=None`` prunes any model space built from ``LayerChoice``, ``InputChoice`` and
    ``nni.choice`` arguments of ``Mutable*`` layers (see :mod:`teg_plugin.nni._supernet`): every kept
    candidate of a choice is active, outputs averaged. A space with a choice that cannot be put in
    a supernet (candidates of different output shapes, such as a width choice; a mutable that the
    space's own code reads) is refused when the experiment starts, with one line naming the choice.

    **Progress.** Each round is logged through NNI's logger (``nni.teg_plugin.pruning``, on the
    console and in ``experiment.log``): the supernet evaluations planned, then per round what it
    dropped and how many evaluations are done. With ``progress``, a tqdm bar on stderr counts the
    supernet evaluations.

    **Resuming.** The checkpoint NNI saves when an experiment stops (``state_dict``, including on
    Ctrl-C) holds the finished rounds; ``NasExperiment.resume`` (or ``load_state_dict``) continues
    from the last finished round without scoring the earlier ones again. A persistent score cache
    (the evaluator's ``cache=``) also makes every mask scored before free, even after a crash
    that left no checkpoint.

    Args:
        space: ``"nas-bench-201"``, ``"darts"`` (or such a space object), or ``None`` for the
            experiment's own model space; the evaluator must be a ``TEGEvaluator`` of the same.
        seed: seed of the proposals after the pruned architecture (the pruning uses none).
        budget: models to submit (default 1: the pruned architecture only).
        exclude_options: options removed before the first round (default TE-NAS's: ``none`` where
            the space has it; ``()`` prunes from every option); see ``PruningStrategy``.
        thin_space: ``space=None`` only: E's thin model space, ``width -> ModelSpace`` (or its
            import path ``"package.module:function"``) with the same labels and options, taking the
            protocol's crops ``(batch, width, 3, 3)`` (e.g. the same blocks with ``width`` channels
            and no stem). Without it E counts the patterns of the supernet itself over the T/G
            images, which saturates for wide networks.
        progress: show a tqdm bar of the supernet evaluations on stderr.

    Raises:
        TypeError: ``seed`` or ``budget`` is not an int.
        ValueError: a ``budget`` below 1, or ``thin_space`` with a registered space.
    """

    _algorithm_names = ("prune",)
    _name_hint = ""

    def __init__(
        self,
        *,
        space: SearchSpace | str | None = "nas-bench-201",
        seed: int = 0,
        budget: int = 1,
        exclude_options: Collection[str] | None = None,
        thin_space: ThinSpace | str | None = None,
        progress: bool = True,
    ) -> None:
        self.scorer: Any = None
        self.thin_space = thin_space
        self.progress = bool(progress)
        options: dict[str, Any] = {} if exclude_options is None else {"exclude_options": tuple(exclude_options)}
        super().__init__("prune", space=space, seed=seed, budget=check_int("budget", budget, minimum=1), **options)
        if thin_space is not None and not self.derive_space:
            raise ValueError(
                f"thin_space applies to space=None (your own model space); the {self.space.name} space "  # type: ignore[union-attr]
                "builds its own thin networks"
            )
        self._counted: Callable[[], None] | None = None

    @property
    def pruning(self) -> PruningStrategy | None:
        """The pruning algorithm (``None`` until the experiment has started): its ``rounds``,
        ``finished_rounds`` and ``n_supernet_evaluations``."""
        return self.algorithm  # type: ignore[return-value]

    def _new_algorithm(self) -> PruningStrategy | None:
        if getattr(self, "scorer", None) is None:
            return None  # the scorer is the evaluator's: known when the experiment starts
        assert self.space is not None
        return PruningStrategy(
            self.space, self._score_mask, seed=self.seed, on_round=self._round_finished, **self.options
        )

    def _derive_space(self, model_space: ExecutableModelSpace) -> SearchSpace:
        return space_from_model_space(model_space, supernet=True, thin_space=self.thin_space)

    def _prepare(self, model_space: ExecutableModelSpace) -> None:
        assert self.space is not None
        self.scorer = _scorer_of(getattr(model_space, "evaluator", None), self.space)
        if isinstance(self.space, NNIChoiceSpace):
            repeat = self.scorer.inputs.repeats[0]
            crops = repeat.region_batches[0][:2] if repeat.region_batches else None
            problem = self.space.supernet_problem(repeat.train_x[:2], crops)
            if problem is not None:
                raise ValueError(f"TEGPruning cannot prune this model space: {problem}")
        self.algorithm = self._new_algorithm()

    def _score_mask(self, mask: Mask) -> tuple[TEGScore, ...]:
        scores = self.scorer.score_mask_repeats(mask)
        if self._counted is not None:
            self._counted()
        return scores

    def _run(self) -> None:
        self._prune()
        super()._run()

    def _prune(self) -> None:
        algorithm = self.pruning
        assert algorithm is not None and self.space is not None
        remaining = algorithm.remaining_evaluations
        restored = len(algorithm.finished_rounds)
        if remaining:
            progress_logger.info(
                "TEG pruning %s: %d supernet evaluations to go%s",
                self.space.name,
                remaining,
                f" (resuming after round {restored - 1})" if restored else "",
            )
        bar = progress_bar(remaining, self.progress, "TEG pruning", "supernet")
        if bar is not None:
            self._counted = bar.update
        try:
            found = algorithm.run()
        finally:
            self._counted = None
            if bar is not None:
                bar.close()
        progress_logger.info(
            "TEG pruning %s: pruned to %s after %d rounds (%d supernet evaluations in this run)",
            self.space.name,
            self.space.format(found),
            len(algorithm.finished_rounds),
            algorithm.n_supernet_evaluations,
        )

    def _round_finished(self, finished: PruneRound) -> None:
        algorithm = self.pruning
        done = algorithm.n_supernet_evaluations if algorithm is not None else 0
        left = algorithm.remaining_evaluations if algorithm is not None else 0
        dropped = ", ".join(f"{key}: {option}" for key, option in finished.dropped.items())
        progress_logger.info(
            "TEG pruning round %d done (%d supernet evaluations, %d to go): dropped %s",
            finished.index,
            done,
            left,
            dropped,
        )

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The told results (as :meth:`TEGStrategy.state_dict`) and ``pruning_rounds``: what each
        finished pruning round dropped."""
        state = super().state_dict()
        if self.pruning is not None:
            state["pruning_rounds"] = [_plain_round(r) for r in self.pruning.finished_rounds]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Replay the results and restore the finished rounds; before the experiment has started
        (no scorer yet) this waits until it does."""
        super().load_state_dict(state_dict)
        if self.pruning is not None:
            self.pruning.restore(state_dict.get("pruning_rounds", []))


def _plain_round(dropped: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key): option for key, option in dropped.items()}


def _scorer_of(evaluator: Any, space: SearchSpace) -> Any:
    """The scorer that prunes ``space``: the evaluator's own for a registered space, a
    :class:`~teg_plugin.scorer.TEGScorer` of the evaluator's protocol, data and cache for a model
    space's own (``space=None``)."""
    if not isinstance(evaluator, TEGEvaluator):
        raise ValueError(
            f"TEGPruning scores supernets with the experiment's TEGEvaluator, got {type(evaluator).__name__}: "
            "use TEGEvaluator(...) as the experiment's evaluator"
        )
    if isinstance(space, NNIChoiceSpace):
        if evaluator.space_name is not None:
            raise ValueError(
                f"TEGPruning(space=None) prunes the model space itself, but the evaluator scores {evaluator.space_name}: "
                "use TEGEvaluator(space=None)"
            )
        from teg_plugin.config import TEGConfig
        from teg_plugin.scorer import TEGScorer

        return TEGScorer(
            space,
            evaluator.data,
            TEGConfig.from_dict(evaluator.config or {}),
            data_root=evaluator.data_root,
            device=evaluator.device,
            cache=evaluator.cache,
        )
    if evaluator.space_name != space.name:
        raise ValueError(
            f"TEGPruning prunes {space.name} but the evaluator scores {evaluator.space_name or 'any model space'}: "
            f"use TEGEvaluator(space={space.name!r})"
        )
    return evaluator.scorer
