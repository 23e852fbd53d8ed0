"""Stopping a search on Ctrl-C or SIGTERM without leaving a trial RUNNING or Optuna in a bad state."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import optuna

from teg_plugin.optuna._quiet import OPTIMIZE_LOGGER, QuietTrialFailures


class StopBetweenTrials:
    """While active (``with``), SIGINT and SIGTERM stop ``study.optimize`` cleanly.

    A signal that arrives while the wrapped objective runs raises ``KeyboardInterrupt`` there: Optuna
    marks that trial failed, so no resumed search waits for it. One that arrives while Optuna itself
    works (asking, telling, writing the storage, where an exception would leave the trial half told)
    only asks the study to stop after the current trial; the ``with`` block then ends with
    ``KeyboardInterrupt``. A second signal always interrupts at once. Outside the main thread,
    signals cannot be handled and nothing changes; a signal the process ignores stays ignored.

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

    def _handle(self, signum: int, frame: object) -> None:
        if self._in_objective or self.requested:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True
        try:
            self._study.stop()
        except RuntimeError:  # not inside optimize (it has just returned): __exit__ reports the stop
            pass

    def __enter__(self) -> StopBetweenTrials:
        logging.getLogger(OPTIMIZE_LOGGER).addFilter(self._quiet)
        if threading.current_thread() is threading.main_thread():
            # An ignored signal stays ignored (`nohup`, a background job of a non-interactive shell).
            self._previous = {
                signum: signal.signal(signum, self._handle)
                for signum in self._SIGNALS
                if signal.getsignal(signum) != signal.SIG_IGN
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
