"""Stopping a search on Ctrl-C or SIGTERM without leaving a trial RUNNING or Optuna in a bad state."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import optuna

from teg_plugin.cli._signals import take_over
from teg_plugin.optuna._quiet import OPTIMIZE_LOGGER, QuietTrialFailures

#: Packages whose code an exception raised at an arbitrary point can leave broken. Optuna's journal
#: file lock, interrupted between renaming and removing its lock file, removes it again in its
#: ``except BaseException`` and raises FileNotFoundError in place of the interrupt (seen with Optuna
#: 5.0: the search then ended with "teg-nas: error: [Errno 2] ...lock...rename"); a database
#: transaction cut half-way has the same kind of risk.
_UNINTERRUPTIBLE_PACKAGES = ("optuna.storages", "sqlalchemy")


def _in_uninterruptible_code(frame: FrameType | None) -> bool:
    """Whether ``frame`` or any frame that called it runs code of :data:`_UNINTERRUPTIBLE_PACKAGES`."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if any(module == package or module.startswith(package + ".") for package in _UNINTERRUPTIBLE_PACKAGES):
            return True
        frame = frame.f_back
    return False


class StopBetweenTrials:
    """While active (``with``), SIGINT and SIGTERM stop ``study.optimize`` cleanly.

    A signal that arrives while the wrapped objective runs raises ``KeyboardInterrupt`` there: Optuna
    marks that trial failed, so no resumed search waits for it. One that arrives while Optuna itself
    works (asking, telling, where an exception would leave the trial half told) only asks the study to
    stop after the current trial; the ``with`` block then ends with ``KeyboardInterrupt``. A second
    signal interrupts at once. Neither is ever raised inside Optuna's storage code or SQLAlchemy, even
    when the objective called them (``trial.suggest_*``, ``set_user_attr``): a signal there only asks
    the study to stop after the current trial. Outside the main thread, signals cannot be handled and
    nothing changes; a signal the process ignores stays ignored.

    Optuna's warnings about a trial failed this way are dropped while the block runs (the caller
    reports the interruption), wherever in the wrapped objective the interrupt was raised.
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, study: optuna.Study) -> None:
        self._study = study
        self._in_objective = False
        self._previous: dict[int, Any] = {}
        self._quiet = QuietTrialFailures((KeyboardInterrupt,))
        #: Whether a signal arrived.
        self.requested = False

    def objective(self, func: Callable[[optuna.Trial], Any]) -> Callable[[optuna.Trial], Any]:
        """``func``, interruptible at once while it runs."""

        def run(trial: optuna.Trial) -> Any:
            try:
                if self.requested:  # a signal came while Optuna prepared this trial
                    raise KeyboardInterrupt
                self._in_objective = True
                try:
                    return func(trial)
                finally:
                    self._in_objective = False
            except KeyboardInterrupt:
                self._quiet.numbers.add(trial.number)
                raise

        return run

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if (self._in_objective or self.requested) and not _in_uninterruptible_code(frame):
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        try:
            self._study.stop()
        except RuntimeError:  # not inside optimize (it has just returned): __exit__ reports the stop
            pass

    def __enter__(self) -> StopBetweenTrials:
        logging.getLogger(OPTIMIZE_LOGGER).addFilter(self._quiet)
        self._previous = {
            signum: previous for signum in self._SIGNALS if (previous := take_over(signum, self._handle)) is not None
        }
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        logging.getLogger(OPTIMIZE_LOGGER).removeFilter(self._quiet)
        if kind is None and self.requested:
            raise KeyboardInterrupt
