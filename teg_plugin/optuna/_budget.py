"""Stop workers that share a study at exactly ``budget`` finished trials."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from teg_plugin.spaces._base import SearchSpace


class BudgetReached(Exception):
    """A trial another worker's trials made unnecessary: the budget is (or will be) reached without it."""


#: Seconds between looks at the study while a trial waits for earlier trials to finish.
_BUDGET_POLL_S = 0.5
#: Seconds a trial waits when only queued (WAITING) earlier trials are left, which no live worker
#: may ever pick up; then it gives up (stopping short is safe, the study resumes; overshooting is not).
_QUEUED_WAIT_S = 30.0


def within_budget(objective: Callable[[optuna.Trial], Any], space: SearchSpace, budget: int) -> Callable[[optuna.Trial], Any]:
    """``objective``, run only if the study can still use the trial: workers sharing a study never
    finish more than ``budget`` trials (``MaxTrialsCallback`` alone stops each worker only after its
    own trial, so two workers each finishing one more trial overshoot).

    Trial numbers order the trials. A trial runs when the finished trials plus the earlier (lower
    numbered) unfinished ones leave room for it; when they do not, it waits for those earlier ones
    (one may still fail, and a dead worker's trial is failed after the heartbeat grace period), then
    runs or, if the budget is reached, fails (``BudgetReached``, caught; not logged) and stops its
    worker. Such a trial still gets its proposal and TEG user attributes, like every trial. Later
    trials never hold up earlier ones, so nothing deadlocks, and at most ``budget`` trials finish.
    """
    import optuna
    from optuna.trial import TrialState

    from teg_plugin.optuna._suggest import suggest

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    unfinished = (TrialState.RUNNING, TrialState.WAITING)
    logging_filter_installed = False

    def run(trial: optuna.Trial) -> Any:
        nonlocal logging_filter_installed
        if not logging_filter_installed:
            # Optuna logs every failed trial as a warning with a traceback; a surplus trial is no failure.
            optuna.logging.get_logger("optuna.study._optimize").addFilter(_hide_budget_reached)
            logging_filter_installed = True
        study = trial.study
        queued_since: float | None = None
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in finished for t in trials)
            ahead = [t for t in trials if t.number < trial.number and t.state in unfinished]
            if done + len(ahead) < budget:
                return objective(trial)
            if done >= budget:
                break
            if all(t.state == TrialState.WAITING for t in ahead):
                queued_since = queued_since if queued_since is not None else time.monotonic()
                if time.monotonic() - queued_since > _QUEUED_WAIT_S:
                    break
            else:
                queued_since = None
            time.sleep(_BUDGET_POLL_S)
            with warnings.catch_warnings():  # fail a dead worker's trial (a no-op without heartbeat)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        study.stop()
        suggest(space, trial)  # the sampler's proposal and its TEG attributes, as on every trial
        raise BudgetReached(f"trial {trial.number} not needed: other workers fill the budget of {budget} trials")

    return run


def _hide_budget_reached(record: Any) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], BudgetReached))
