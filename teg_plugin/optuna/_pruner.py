"""TEGPruner: stop a trial before training when its architecture's TEG rank is poor."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from optuna.pruners import BasePruner

from teg_plugin._checks import check_int
from teg_plugin.optuna._attrs import (
    count_strictly_better,
    measured_user_attrs,
    read_user_attrs,
    rule_extra,
    score_from_user_attrs,
    scored_trials,
    study_rule,
    write_user_attrs,
)

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from teg_plugin.scorer import TEGScorer
    from teg_plugin.scores import RankRule, TEGScore


class TEGPruner(BasePruner):
    """Prune a trial whose architecture ranks in the worst ``1 - quantile`` share by TEG rank-sum.

    The rank-sum is computed with :func:`teg_plugin.scores.rank_sums`, under the study's rank rule
    (the paper's unless :class:`TEGSampler` or :func:`zero_cost_objective` was given another), over
    the TEG user attributes of every trial that has them (failed trials aside), this one included
    (a rule's proxies and complexity: from the trials' ``proxy_<name>`` and ``complexity``
    attributes; computed with ``scorer`` where the pruner scores a trial): the trial is pruned when
    more than ``quantile`` x (the number of other trials) have a strictly lower rank-sum. A ``bad``
    architecture is always pruned. Nothing is pruned until ``n_warmup_trials`` other trials have TEG
    attributes.

    The check is meant to run **before training**: report any value at the first step and ask
    :meth:`~optuna.trial.Trial.should_prune`. The TEG decision is taken while the trial has reported
    at most one value; later checks (during training) go to ``training_pruner`` (``None``: never
    prune). In multi-objective studies, where Optuna has no ``should_prune``, use
    :func:`should_prune_zero_cost`.

    A trial proposed by :class:`TEGSampler` already has its TEG attributes. Otherwise they are
    computed with ``scorer`` from the trial's parameters (and written to the trial); without a
    scorer such a trial is never pruned. With a :class:`TrialSpace` the objective simply calls the
    user's ``build_model(trial)`` before the check: its parameters are the space's.

    Args:
        scorer: scores the architectures of trials without TEG attributes (optional).
        quantile: the share of trials kept, in ``[0, 1]`` (0.5 prunes the worse half; 1 prunes
            only bad architectures).
        n_warmup_trials: other trials with TEG attributes needed before anything is pruned.
        training_pruner: decides the checks after the first reported step (e.g. a
            :class:`~optuna.pruners.MedianPruner` on validation accuracy).

    Example:
        >>> import optuna
        >>> from teg_plugin.config import TEGConfig
        >>> from teg_plugin.scorer import TEGScorer
        >>> from teg_plugin.optuna import TEGPruner, TEGSampler, suggest
        >>> scorer = TEGScorer("nas-bench-201", data="synthetic", device="cpu",
        ...                    config=TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2))
        >>> def objective(trial):
        ...     arch = suggest(scorer.space, trial)
        ...     trial.report(0.0, step=0)
        ...     if trial.should_prune():  # before training
        ...         raise optuna.TrialPruned()
        ...     return 0.0  # train ``arch`` here and return its accuracy
        >>> study = optuna.create_study(direction="maximize", sampler=TEGSampler(scorer.space, scorer),
        ...                             pruner=TEGPruner(scorer, n_warmup_trials=2))
        >>> study.optimize(objective, n_trials=5)
        >>> len(study.trials)
        5
    """

    def __init__(
        self,
        scorer: TEGScorer | None = None,
        *,
        quantile: float = 0.5,
        n_warmup_trials: int = 5,
        training_pruner: BasePruner | None = None,
    ) -> None:
        _check_options(quantile, n_warmup_trials)
        if training_pruner is not None and not isinstance(training_pruner, BasePruner):
            raise TypeError(
                f"training_pruner must be an Optuna pruner (e.g. optuna.pruners.MedianPruner()), got {training_pruner!r}"
            )
        self._scorer = scorer
        self._quantile = float(quantile)
        self._n_warmup_trials = int(n_warmup_trials)
        self._training_pruner = training_pruner

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether ``trial`` should stop (see the class description)."""
        if len(trial.intermediate_values) > 1:
            return self._training_pruner.prune(study, trial) if self._training_pruner is not None else False
        return _decide(
            study,
            trial,
            scorer=self._scorer,
            quantile=self._quantile,
            n_warmup_trials=self._n_warmup_trials,
        )


def should_prune_zero_cost(
    trial: optuna.Trial,
    *,
    quantile: float = 0.5,
    n_warmup_trials: int = 5,
    scorer: TEGScorer | None = None,
) -> bool:
    """:class:`TEGPruner`'s decision for a live trial, for multi-objective studies (where Optuna has no
    :meth:`~optuna.trial.Trial.should_prune`) or any study with another pruner.

    Args:
        trial: the live trial, after its architecture was suggested.
        quantile: the share of trials kept (see :class:`TEGPruner`).
        n_warmup_trials: other trials with TEG attributes needed before anything is pruned.
        scorer: scores the trial's architecture if it has no TEG attributes yet.

    Example:
        >>> import optuna
        >>> from teg_plugin.spaces import NB201Space
        >>> from teg_plugin.optuna import suggest
        >>> space = NB201Space()
        >>> def objective(trial):
        ...     arch = suggest(space, trial)
        ...     if should_prune_zero_cost(trial):  # no TEG attributes and no scorer: keeps the trial
        ...         raise optuna.TrialPruned()
        ...     return 0.0, 1.0
        >>> study = optuna.create_study(directions=["maximize", "minimize"])
        >>> study.optimize(objective, n_trials=2)
        >>> [t.state.name for t in study.trials]
        ['COMPLETE', 'COMPLETE']
    """
    _check_options(quantile, n_warmup_trials)
    return _decide(
        trial.study,
        trial,
        scorer=scorer,
        quantile=float(quantile),
        n_warmup_trials=int(n_warmup_trials),
    )


def _check_options(quantile: float, n_warmup_trials: int) -> None:
    if not 0.0 <= float(quantile) <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
    check_int("n_warmup_trials", n_warmup_trials, minimum=0)


def _decide(
    study: optuna.Study,
    trial: optuna.Trial | FrozenTrial,
    *,
    scorer: TEGScorer | None,
    quantile: float,
    n_warmup_trials: int,
) -> bool:
    # Read from the storage: a live trial's own copy may predate what the sampler wrote.
    user_attrs = read_user_attrs(study, trial)
    rule = study_rule(study)
    score = score_from_user_attrs(user_attrs)
    if score is None:
        measured = _score_params(study, trial, user_attrs, trial.params, scorer, rule)
        if measured is None:
            return False
        score, user_attrs = measured
    others = scored_trials(study, exclude_number=trial.number)
    if len(others) < n_warmup_trials:
        return False
    if score.bad:
        return True
    extra = rule_extra([user_attrs, *(other.user_attrs for other, _ in others)], rule)
    return count_strictly_better(score, [other for _, other in others], rule, extra) > quantile * len(others)


def _score_params(
    study: optuna.Study,
    trial: optuna.Trial | FrozenTrial,
    user_attrs: Mapping[str, Any],
    params: Mapping[str, Any],
    scorer: TEGScorer | None,
    rule: RankRule,
) -> tuple[TEGScore, dict[str, Any]] | None:
    """Score the trial's architecture with ``scorer`` and store its TEG attributes (and the values
    of ``rule``'s extra terms); the score and those attributes, ``None`` when there is no scorer or
    the parameters do not name an architecture yet."""
    if scorer is None:
        return None
    space = scorer.space
    names = list(space.choices())
    if any(name not in params for name in names):
        return None
    try:
        arch: Hashable = space.from_params({name: params[name] for name in names})
    except ValueError:
        return None
    score = scorer.score(arch)
    attrs = measured_user_attrs(scorer, arch, score, rule=rule)
    write_user_attrs(study, trial, attrs, user_attrs)
    return score, attrs
