"""Stop workers that share a study at exactly ``budget`` finished trials."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from teg_plugin.optuna._quiet import OPTIMIZE_LOGGER, QuietTrialFailures

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
#: Seconds a trial waits for earlier RUNNING trials on a storage without heartbeat (a journal
#: file): there a dead worker's trial is never failed, so the wait must end; then it gives up.
_UNEXPIRABLE_WAIT_S = 300.0
#: Seconds of waiting for earlier RUNNING trials after which the wait is explained once (a trial of
#: a live worker usually ends sooner; a killed worker's is failed only after the heartbeat grace period).
_WAIT_NOTICE_S = 15.0

_logger = logging.getLogger(__name__)


def within_budget(objective: Callable[[optuna.Trial], Any], space: SearchSpace, budget: int) -> Callable[[optuna.Trial], Any]:
    """``objective``, run only if the study can still use the trial: workers sharing a study never
    finish more than ``budget`` trials (``MaxTrialsCallback`` alone stops each worker only after its
    own trial, so two workers each finishing one more trial overshoot).

    Trial numbers order the trials. A trial runs when the finished trials plus the earlier (lower
    numbered) unfinished ones leave room for it; when they do not, it waits for those earlier ones
    (one may still fail, and a dead worker's trial is failed after the heartbeat grace period; on a
    storage without heartbeat the wait ends after ``_UNEXPIRABLE_WAIT_S`` with a warning), then
    runs or, if the budget is reached, fails (``BudgetReached``, caught; not logged) and stops its
    worker. Such a trial still gets its proposal and TEG user attributes, like every trial. Later
    trials never hold up earlier ones, so nothing deadlocks, and at most ``budget`` trials finish.
    """
    import optuna
    from optuna.trial import TrialState

    from teg_plugin.optuna._suggest import suggest

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    unfinished = (TrialState.RUNNING, TrialState.WAITING)
    hide = QuietTrialFailures((BudgetReached, KeyboardInterrupt))
    logging_filter_installed = False

    def run(trial: optuna.Trial) -> Any:
        nonlocal logging_filter_installed
        if not logging_filter_installed:
            # Optuna logs every failed trial as two warnings, one with a traceback; a surplus trial is
            # no failure, and an interrupted one is reported by the caller in one line.
            optuna.logging.get_logger(OPTIMIZE_LOGGER).addFilter(hide)
            logging_filter_installed = True
        try:
            return run_within_budget(trial)
        except KeyboardInterrupt:
            hide.numbers.add(trial.number)
            raise

    def run_within_budget(trial: optuna.Trial) -> Any:
        study = trial.study
        expirable = _heartbeat_enabled(study)
        waiting_since: float | None = None
        wait_started = time.monotonic()
        explained = False
        while True:
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in finished for t in trials)
            ahead = [t for t in trials if t.number < trial.number and t.state in unfinished]
            if done + len(ahead) < budget:
                return objective(trial)
            if done >= budget:
                break
            queued_only = all(t.state == TrialState.WAITING for t in ahead)
            if queued_only or not expirable:
                waiting_since = waiting_since if waiting_since is not None else time.monotonic()
                if time.monotonic() - waiting_since > (_QUEUED_WAIT_S if queued_only else _UNEXPIRABLE_WAIT_S):
                    if not queued_only:
                        running = [t.number for t in ahead if t.state == TrialState.RUNNING]
                        _logger.warning(
                            "teg-nas: trial(s) %s of study %r still RUNNING after %.0f s; this storage has no "
                            "heartbeat (journal), so a trial whose worker died never ends. Stopping at %d of %d "
                            "trials. If no worker runs it, fail it (study.tell(%d, state=optuna.trial.TrialState.FAIL)) "
                            "and resume, or use an SQL storage, whose heartbeat does that",
                            running, study.study_name, _UNEXPIRABLE_WAIT_S, done, budget, running[0],
                        )
                    break
            else:
                waiting_since = None
                if not explained and time.monotonic() - wait_started > _WAIT_NOTICE_S:
                    explained = True
                    running = [t.number for t in ahead if t.state == TrialState.RUNNING]
                    _logger.warning(
                        "teg-nas: the last trial(s) of the budget wait for trial(s) %s, still RUNNING (another "
                        "worker's, or a stopped worker's, which Optuna's heartbeat fails after its grace period; "
                        "then this search goes on). A trial started outside study.optimize (study.ask) has no "
                        "heartbeat and is never failed: if no worker runs it, fail it "
                        "(study.tell(%d, state=optuna.trial.TrialState.FAIL))",
                        running, running[0],
                    )
            time.sleep(_BUDGET_POLL_S)
            with warnings.catch_warnings():  # fail a dead worker's trial (a no-op without heartbeat)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        study.stop()
        hide.numbers.add(trial.number)
        suggest(space, trial)  # the sampler's proposal and its TEG attributes, as on every trial
        raise BudgetReached(f"trial {trial.number} not needed: other workers fill the budget of {budget} trials")

    return run


def _heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage fails the trials of dead workers (Optuna's heartbeat)."""
    try:
        from optuna.storages._heartbeat import is_heartbeat_enabled
    except ImportError:  # pragma: no cover - an Optuna without it: assume the safe, bounded wait
        return False
    return bool(is_heartbeat_enabled(study._storage))
