"""The zero-cost objective (TEG values instead of training), and the TEG winner of a study."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

import optuna

from teg_plugin.confirm import DEFAULT_CONFIRM_RULE
from teg_plugin.optuna._attrs import (
    SCORE_ATTRS,
    checked_proxy_names,
    claim_study_rule,
    measured_user_attrs,
    normalized_rank_sum,
    rule_extra,
    scored_trials,
    set_user_attrs,
    study_rule,
    teg_trials,
)
from teg_plugin.optuna._final import current_final_choice, run_final_choice
from teg_plugin.optuna._suggest import suggest
from teg_plugin.scores import INDICATORS, RankRule, as_rank_rule, best_distinct_index

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from teg_plugin.scorer import TEGScorer
    from teg_plugin.spaces._base import SearchSpace

#: An Optuna study direction.
Direction = Literal["minimize", "maximize"]

#: Directions of the multi-objective zero-cost study, in :data:`METRIC_NAMES` order.
DIRECTIONS: tuple[Direction, ...] = ("minimize", "maximize", "minimize")
#: Metric names of the multi-objective zero-cost study (``study.set_metric_names(list(METRIC_NAMES))``).
METRIC_NAMES: tuple[str, ...] = INDICATORS

ZeroCostObjective = Callable[[optuna.Trial], float | tuple[float, float, float]]


def study_directions(multi_objective: bool) -> list[Direction]:
    """The directions of a study for :func:`zero_cost_objective`: :data:`DIRECTIONS` for the three
    indicators, else ``["minimize"]`` for the rank-based score.

    Example:
        >>> study_directions(False), study_directions(True)
        (['minimize'], ['minimize', 'maximize', 'minimize'])
    """
    return list(DIRECTIONS) if multi_objective else ["minimize"]


def zero_cost_objective(
    space: SearchSpace,
    scorer: TEGScorer,
    *,
    multi_objective: bool = False,
    proxies: str | Iterable[str] = (),
    rule: RankRule | str | None = None,
) -> ZeroCostObjective:
    """An objective that scores the suggested architecture with TEG instead of training it.

    The objective suggests an architecture (:func:`suggest`), scores it with ``scorer``, writes the
    TEG user attributes, and returns:

    * single-objective (default; ``direction="minimize"``): the architecture's **rank-based score**,
      its rank-sum under ``rule`` among every trial with TEG attributes so far (failed trials aside,
      this one included) divided by the number of good architectures among them. For the paper's
      rule it lies in ``(0, 3]``, lower is better; 3/n means best on all three indicators among n
      (for another rule, 3 is the sum of its weights). The value is relative to the trials that
      existed when the trial finished, so :func:`best_trial` (not ``study.best_trial``) gives the
      exact winner.
    * ``multi_objective=True``: ``(ntk_cond, regions, kr_mse)``, for a study with
      ``directions=DIRECTIONS`` (minimize, maximize, minimize); ``study.best_trials`` is the Pareto
      front. Name the metrics with ``study.set_metric_names(list(METRIC_NAMES))``.

    A ``bad`` architecture (an undefined indicator) has no meaningful value: the objective raises
    :class:`optuna.TrialPruned` after writing its attributes, in both modes. It therefore never
    enters ``best_trial``, ``best_trials`` or the Pareto front, every sampler sees it as a failed
    attempt, and :class:`TEGSampler` still learns that it ranks last.

    A :class:`TrialSpace` (a user's ``build_model(trial)``) works the same: its parameters are
    suggested with ``build_model``'s own distributions, the model is built only by the scorer (on
    fixed trials), and ``arch`` is the JSON object of the parameters.

    Args:
        space: the search space.
        scorer: scores architectures of ``space`` (share it with :class:`TEGSampler`).
        multi_objective: return the three indicators instead of the rank-based score.
        proxies: zero-cost proxies (``"synflow,nwot"`` or a list, see :mod:`teg_plugin.proxies`)
            computed too, each stored as user attribute ``proxy_<name>`` (``None`` when flagged).
        rule: how the study ranks its trials (a :class:`~teg_plugin.scores.RankRule` or its text,
            e.g. ``"nwot"`` or ``"ntk_cond,regions,kr_mse,synflow=0.5"``; ``None``: the paper's).
            The study records it (study user attribute ``teg_rank_rule``), so that
            :class:`TEGSampler`, :class:`TEGPruner`, :func:`best_trial` and the figures rank by it
            too; the values of its extra terms are stored in each trial (``proxy_<name>``,
            ``complexity``). A study holds one rule: a study that ranks by another raises
            ``ValueError`` in the first trial.

    Example:
        >>> import optuna
        >>> from teg_plugin.config import TEGConfig
        >>> from teg_plugin.scorer import TEGScorer
        >>> scorer = TEGScorer("nas-bench-201", data="synthetic", device="cpu",
        ...                    config=TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2))
        >>> study = optuna.create_study(directions=list(DIRECTIONS),
        ...                             sampler=optuna.samplers.RandomSampler(seed=0))
        >>> study.set_metric_names(list(METRIC_NAMES))
        >>> study.optimize(zero_cost_objective(scorer.space, scorer, multi_objective=True), n_trials=3)
        >>> study.metric_names
        ['ntk_cond', 'regions', 'kr_mse']
    """
    if scorer.space.name != space.name:
        raise ValueError(f"the scorer scores {scorer.space.name!r} but the objective searches {space.name!r}")
    expected = study_directions(multi_objective)
    proxy_names = checked_proxy_names(proxies)
    rule = as_rank_rule(rule)

    def objective(trial: optuna.Trial) -> float | tuple[float, float, float]:
        directions = [d.name.lower() for d in trial.study.directions]
        if directions != expected:
            # Optuna would otherwise optimise the wrong way (e.g. keep the worst arch as best_trial).
            how = f"directions={expected}" if multi_objective else 'direction="minimize"'
            raise ValueError(
                f"the zero-cost objective{' (multi_objective=True)' if multi_objective else ''} needs a study "
                f"created with {how}; this study has directions={directions}"
            )
        arch = suggest(space, trial)  # first: TEGSampler records its rule when it proposes
        claim_study_rule(trial.study, rule, who="the zero-cost objective")
        score = scorer.score(arch)
        attrs = measured_user_attrs(scorer, arch, score, proxies=proxy_names, rule=rule)
        set_user_attrs(trial, attrs)
        if score.bad:
            raise optuna.TrialPruned(f"bad architecture {space.format(arch)}: {score.reason or 'undefined indicator'}")
        if multi_objective:
            return float(score.ntk_cond), float(score.regions), float(score.kr_mse)
        others = scored_trials(trial.study, exclude_number=trial.number)
        extra = rule_extra([attrs, *(other.user_attrs for other, _ in others)], rule)
        return normalized_rank_sum(score, [other for _, other in others], rule, extra)

    return objective


def best_trial(
    study: optuna.Study,
    scorer: TEGScorer | None = None,
    *,
    confirm_top: int = 0,
    confirm_seeds: int = 0,
    rule: RankRule = DEFAULT_CONFIRM_RULE,
    progress: bool = False,
    use_final_choice: bool = True,
) -> FrozenTrial:
    """The study's answer: the complete trial of the architecture its final choice picked, else the
    one with the lowest rank-sum under the study's rank rule (:func:`study_rule`: the paper's unless
    the objective or the sampler was given another) among the distinct architectures of the
    complete trials (each counted once, at its first complete trial; the first among equals).

    With a ``scorer`` and ``confirm_top``/``confirm_seeds`` above 0, the final choice is made first
    (or finished, after an interruption) and stored in the study
    (:func:`~teg_plugin.optuna.run_final_choice`: the ``confirm_top`` best candidates re-ranked over
    ``confirm_seeds`` further score seeds with ``rule``, the final choice's own rule). Without them, a final choice already
    stored is used while the study has not gained trials since, unless ``use_final_choice`` is
    ``False`` (the search's own best, by rank-sum).

    Rank-sums are recomputed from the trials' user attributes, so this is the exact winner
    of the study whatever the objective returned (the zero-cost objective's values are relative to
    the trials that existed when each finished). Works for single- and multi-objective studies.

    Raises:
        ValueError: no complete trial has TEG attributes (the message says when every architecture
            scored was flagged bad, with the first reason).

    Example:
        >>> import optuna
        >>> from optuna.trial import create_trial
        >>> study = optuna.create_study()
        >>> for arch, cond, regions in [("a", 50.0, 10.0), ("b", 5.0, 90.0), ("c", 20.0, 40.0)]:
        ...     study.add_trial(create_trial(value=0.0, user_attrs={"arch": arch, "ntk_cond": cond,
        ...                                                         "regions": regions, "kr_mse": 0.1, "bad": False}))
        >>> best_trial(study).number
        1
    """
    if scorer is not None and confirm_top and confirm_seeds:
        run_final_choice(study, scorer, top=confirm_top, seeds=confirm_seeds, rule=rule, progress=progress)
    complete = [(trial, teg) for trial, teg in teg_trials(study) if trial.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        scored = [score for _, score in scored_trials(study)]
        if scored and all(score.bad for score in scored):
            raise ValueError(
                f"every architecture scored in study {study.study_name!r} ({len(scored)} trial(s)) was flagged bad, "
                f"so there is no best one; the first reason: {scored[0].reason}"
            )
        raise ValueError(f"no complete trial has TEG user attributes ({', '.join(SCORE_ATTRS)})")
    # Each architecture counts once (a search may propose one twice), at its first complete trial,
    # as in Strategy.best(), the figures and the dashboard note.
    archs = [teg.arch for _, teg in complete]
    final = current_final_choice(study, complete) if use_final_choice else None
    if final is not None and final["pick"] in archs:
        return complete[archs.index(final["pick"])][0]
    search_rule = study_rule(study)
    extra = rule_extra([trial.user_attrs for trial, _ in complete], search_rule)
    return complete[best_distinct_index(archs, [teg.score() for _, teg in complete], search_rule, extra)][0]
