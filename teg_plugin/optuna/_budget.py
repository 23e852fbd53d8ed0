"""Stop workers that share a study at exactly ``budget`` finished trials."""

from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from teg_plugin.optuna._attrs import read_worker, write_worker
from teg_plugin.optuna._compat import OPTIMIZE_LOGGER, heartbeat_enabled, stale_trial_callback, storage_of, trial_id_of
from teg_plugin.optuna._quiet import QuietTrialFailures

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

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


def within_budget(
    objective: Callable[[optuna.Trial], Any], space: SearchSpace, budget: int
) -> Callable[[optuna.Trial], Any]:
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
    return _BudgetGate(objective, space, budget)


class _BudgetGate:
    """The objective :func:`within_budget` returns: each call runs ``objective`` on its trial, or
    skips the trial when the study's budget is (or will be) reached without it."""

    def __init__(self, objective: Callable[[optuna.Trial], Any], space: SearchSpace, budget: int) -> None:
        self._objective = objective
        self._space = space
        self._budget = budget
        self._quiet = QuietTrialFailures((BudgetReached, KeyboardInterrupt))
        self._quiet_installed = False

    def __call__(self, trial: optuna.Trial) -> Any:
        self._install_quiet_logging()
        try:
            return self._run(trial)
        except KeyboardInterrupt:
            self._quiet.numbers.add(trial.number)
            raise

    def _install_quiet_logging(self) -> None:
        """Once: Optuna logs every failed trial as two warnings, one with a traceback; a surplus trial
        is no failure, and an interrupted one is reported by the caller in one line."""
        if not self._quiet_installed:
            import optuna

            optuna.logging.get_logger(OPTIMIZE_LOGGER).addFilter(self._quiet)
            self._quiet_installed = True

    def _run(self, trial: optuna.Trial) -> Any:
        """Wait until the earlier trials leave room for ``trial`` (then run it) or fill the budget
        (then skip it, as when the wait has no end in sight)."""
        study = trial.study
        wait = _Wait(expirable=heartbeat_enabled(storage_of(study)))
        write_worker(study, trial, _this_process())
        while True:
            done, ahead = self._count(study, trial)
            if done + len(ahead) < self._budget:
                return self._objective(trial)
            if done >= self._budget:
                break
            if _fail_trials_of_dead_workers(study, ahead):
                continue  # count again: a failed trial leaves room
            if not self._wait_on(study, wait, done, ahead):
                break
            self._pause(study)
        self._skip(trial)

    def _count(self, study: optuna.Study, trial: optuna.Trial) -> tuple[int, list[FrozenTrial]]:
        """The number of finished trials, and the earlier (lower numbered) unfinished ones."""
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        ahead = [t for t in trials if t.number < trial.number and t.state in (TrialState.RUNNING, TrialState.WAITING)]
        return done, ahead

    def _wait_on(self, study: optuna.Study, wait: _Wait, done: int, ahead: list[FrozenTrial]) -> bool:
        """Whether to keep waiting for the trials ``ahead``: for RUNNING ones a heartbeat will end,
        yes (saying once, after a while, what the wait is for); for queued ones no live worker may pick
        up, or on a storage without heartbeat, only for a bounded time."""
        from optuna.trial import TrialState

        queued_only = all(t.state == TrialState.WAITING for t in ahead)
        if queued_only or not wait.expirable:
            if not wait.bounded_wait_over(_QUEUED_WAIT_S if queued_only else _UNEXPIRABLE_WAIT_S):
                return True
            if not queued_only:
                self._warn_unending_wait(study, done, ahead)
            return False
        if wait.time_to_explain():
            self._explain_wait(ahead)
        return True

    def _warn_unending_wait(self, study: optuna.Study, done: int, ahead: list[FrozenTrial]) -> None:
        running = _running_numbers(ahead)
        _logger.warning(
            "teg-nas: trial(s) %s of study %r still RUNNING after %.0f s; this storage has no "
            "heartbeat (journal), so a trial whose worker died never ends. Stopping at %d of %d "
            "trials. If no worker runs it, fail it (study.tell(%d, state=optuna.trial.TrialState.FAIL)) "
            "and resume, or use an SQL storage, whose heartbeat does that",
            running,
            study.study_name,
            _UNEXPIRABLE_WAIT_S,
            done,
            self._budget,
            running[0],
        )

    def _explain_wait(self, ahead: list[FrozenTrial]) -> None:
        running = _running_numbers(ahead)
        _logger.warning(
            "teg-nas: the last trial(s) of the budget wait for trial(s) %s, still RUNNING (another "
            "worker's, or a stopped worker's, which Optuna's heartbeat fails after its grace period; "
            "then this search goes on). A trial started outside study.optimize (study.ask) has no "
            "heartbeat and is never failed: if no worker runs it, fail it "
            "(study.tell(%d, state=optuna.trial.TrialState.FAIL))",
            running,
            running[0],
        )

    def _pause(self, study: optuna.Study) -> None:
        """Sleep one poll interval, then fail a dead worker's trial (a no-op without heartbeat)."""
        import optuna

        time.sleep(_BUDGET_POLL_S)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)

    def _skip(self, trial: optuna.Trial) -> NoReturn:
        """Stop this worker and fail ``trial`` quietly (``BudgetReached``); it still gets the sampler's
        proposal and its TEG attributes, as every trial does."""
        from teg_plugin.optuna._suggest import suggest

        trial.study.stop()
        self._quiet.numbers.add(trial.number)
        suggest(self._space, trial)
        raise BudgetReached(f"trial {trial.number} not needed: other workers fill the budget of {self._budget} trials")


class _Wait:
    """How long one trial has waited for earlier ones."""

    def __init__(self, *, expirable: bool) -> None:
        #: Whether the storage fails a dead worker's RUNNING trial (heartbeat), which ends any wait for it.
        self.expirable = expirable
        self._started = time.monotonic()
        self._bounded_since: float | None = None
        self._explained = False

    def bounded_wait_over(self, limit_s: float) -> bool:
        """Go on with (or start) a wait that ends after ``limit_s`` seconds; whether it has ended."""
        if self._bounded_since is None:
            self._bounded_since = time.monotonic()
        return time.monotonic() - self._bounded_since > limit_s

    def time_to_explain(self) -> bool:
        """A wait a heartbeat will end (a bounded wait starts afresh after it): whether it has lasted
        ``_WAIT_NOTICE_S`` and was not explained yet (then it counts as explained)."""
        self._bounded_since = None
        if self._explained or time.monotonic() - self._started <= _WAIT_NOTICE_S:
            return False
        self._explained = True
        return True


def _running_numbers(trials: list[FrozenTrial]) -> list[int]:
    from optuna.trial import TrialState

    return [t.number for t in trials if t.state == TrialState.RUNNING]


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
    _logger.warning(
        "teg-nas: trial(s) %s of study %r were RUNNING in a process that no longer exists; marked them FAIL",
        [t.number for t in failed],
        study.study_name,
    )
    if heartbeat_enabled(storage):
        callback = stale_trial_callback(storage)
        if callback is not None:
            for trial in failed:
                callback(study, storage.get_trial(trial_id_of(trial)))
    return True
