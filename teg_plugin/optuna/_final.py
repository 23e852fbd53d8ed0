"""The final choice of a study: its best candidates re-ranked over further score seeds, kept in the study.

The outcome lives in the study's user attributes, so that :func:`best_trial`, the dashboard note and
``teg-nas search`` agree on the pick, and a resumed or interrupted final choice never loses a
finished score:

* :data:`FINAL_SCORES_ATTR`: every score measured for the final choice so far, as
  ``[arch, seed, score dict]`` triples, written after each one;
* :data:`FINAL_CHOICE_ATTR`: the finished final choice (:meth:`Confirmation.to_dict`) with the
  settings it was made under and how many scored trials the study held then. It stays the study's
  answer until the study gains a trial; :func:`current_final_choice` then ignores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna

from teg_plugin.confirm import DEFAULT_CONFIRM_RULE, Confirmation, confirm, confirmation_seeds, top_candidates
from teg_plugin.optuna._attrs import (
    FINAL_CHOICE_ATTR,
    FINAL_SCORES_ATTR,
    rule_extra,
    scored_trials,
    stored_arch,
    study_rule,
)
from teg_plugin.scores import RankRule, TEGScore

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from teg_plugin.scorer import TEGScorer


def complete_scored(study: optuna.Study) -> list[tuple[FrozenTrial, TEGScore]]:
    """The complete trials of ``study`` with TEG user attributes, with their scores, in trial order."""
    return [(t, s) for t, s in scored_trials(study) if t.state == optuna.trial.TrialState.COMPLETE]


def run_final_choice(
    study: optuna.Study,
    scorer: TEGScorer,
    *,
    top: int,
    seeds: int,
    rule: RankRule = DEFAULT_CONFIRM_RULE,
    progress: bool = False,
) -> Confirmation | None:
    """Make (or finish) the final choice of ``study`` and store it in the study; ``None`` when
    ``top`` or ``seeds`` is 0 or no complete trial has a good score.

    The candidates are the ``top`` best distinct architectures of the complete scored trials, as
    the study ranks them (:func:`~teg_plugin.confirm.top_candidates` under the study's rank rule,
    :func:`~teg_plugin.optuna._attrs.study_rule`); ``rule`` then re-ranks them under each seed.
    Each trial's own score is its score under ``scorer``'s seed. Scores measured earlier for this
    study (an interrupted run) are reused when the scorer's fingerprint and the seeds are the same.
    """
    if not top or not seeds:
        return None
    complete = complete_scored(study)
    space = scorer.space
    archs = [space.parse(str(stored_arch(t.user_attrs))) for t, _ in complete]
    scores = [s for _, s in complete]
    search_rule = study_rule(study)
    extra = rule_extra([t.user_attrs for t, _ in complete], search_rule)
    candidates = top_candidates(space, archs, scores, top, rule=search_rule, extra=extra)
    if not candidates:
        return None
    all_seeds = (scorer.config.seed, *confirmation_seeds(scorer.config.seed, seeds))
    known: dict[tuple[str, int], TEGScore] = {(space.format(a), all_seeds[0]): s for a, s in zip(archs, scores)}
    stored = study.user_attrs.get(FINAL_SCORES_ATTR) or {}
    measured: list[list[Any]] = []
    if stored.get("fingerprint") == scorer.fingerprint:
        measured = [entry for entry in stored.get("scores", []) if _valid_entry(entry)]
        known.update({(text, int(seed)): TEGScore.from_dict(values) for text, seed, values in measured})

    def keep(text: str, seed: int, score: TEGScore) -> None:
        measured.append([text, seed, score.to_dict()])
        study.set_user_attr(FINAL_SCORES_ATTR, {"fingerprint": scorer.fingerprint, "scores": measured})

    confirmation = confirm(scorer, candidates, seeds=seeds, rule=rule, known=known, on_score=keep, progress=progress)
    study.set_user_attr(
        FINAL_CHOICE_ATTR,
        {**confirmation.to_dict(), "top": top, "fingerprint": scorer.fingerprint, "n_scored_trials": len(complete)},
    )
    return confirmation


def current_final_choice(study: optuna.Study, complete: Sequence[Any] | None = None) -> dict[str, Any] | None:
    """The study's stored final choice, or ``None`` if it has none or gained trials since it was made."""
    stored = study.user_attrs.get(FINAL_CHOICE_ATTR)
    if not isinstance(stored, dict) or not isinstance(stored.get("pick"), str):
        return None
    count = len(complete_scored(study) if complete is None else complete)
    return stored if stored.get("n_scored_trials") == count else None


def _valid_entry(entry: object) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 3
        and isinstance(entry[0], str)
        and isinstance(entry[1], int)
        and isinstance(entry[2], dict)
    )
