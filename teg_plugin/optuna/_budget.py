"""Stop workers that share a study at exactly ``budget`` finished trials."""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teg_plugin.optuna._attrs import read_worker, write_worker
from teg_plugin.optuna._compat import OPTIMIZE_LOGGER, heartbeat_enabled, stale_trial_callback, storage_of, trial_id_of
from teg_plugin.optuna._quiet import QuietTrialFailures

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
    worker. Each trial records its process (``WORKER_ATTR``), and a waiting trial fails an earlier
    RUNNING one at once when that process has ended on this host (SIGKILL, a crash); with heartbeat,
    the storage's stale-trial callback then re-queues it, as after the grace period. Such a trial still gets its proposal and TEG user attributes, like every trial. Later
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
        expirable = heartbeat_enabled(storage_of(study))
        write_worker(study, trial, _this_process())
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
            if _fail_trials_of_dead_workers(study, ahead):
                continue  # count again: a failed trial leaves room
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


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    """When process ``pid`` started (Linux: clock ticks after boot, from /proc), to tell a reused pid
    from the original; ``""`` where it cannot be read (the pid alone is then compared)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22; the name in (...) may hold spaces


def _is_gone(worker: str) -> bool:
    """Whether the process ``worker`` (:func:`_this_process`) has ended; ``False`` when it cannot be
    told (another host, or a process of another user that may still run)."""
    host, pid_text, start = worker.rsplit(":", 2)
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return bool(start) and _start_time(pid) not in ("", start)


def _fail_trials_of_dead_workers(study: optuna.Study, ahead: list[optuna.trial.FrozenTrial]) -> bool:
    """Fail the RUNNING trials of ``ahead`` whose worker process is known to be gone, then run the
    storage's stale-trial callback on them (with heartbeat: a retry); returns whether any was failed."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = storage_of(study)
    failed = []
    for trial in ahead:
        worker = read_worker(trial)
        if trial.state != TrialState.RUNNING or worker is None or not _is_gone(worker):
            continue
        try:
            if storage.set_trial_state_values(trial_id_of(trial), TrialState.FAIL):
                failed.append(trial)
        except UpdateFinishedTrialError:  # it ended meanwhile, or another worker failed it first
            continue
    if not failed:
        return False
    _logger.warning("teg-nas: trial(s) %s of study %r were RUNNING in a process that no longer exists; "
                    "marked them FAIL", [t.number for t in failed], study.study_name)
    if heartbeat_enabled(storage):
        callback = stale_trial_callback(storage)
        for trial in failed if callback is not None else []:
            callback(study, storage.get_trial(trial_id_of(trial)))
    return True
