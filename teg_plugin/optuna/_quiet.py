"""Keep Optuna quiet about trials that did not fail on their own: a surplus worker trial or an interrupted one."""

from __future__ import annotations

import logging

from teg_plugin.optuna._compat import OPTIMIZE_LOGGER  # noqa: F401  (where cli/_interrupt imports it from)


class QuietTrialFailures(logging.Filter):
    """Drops Optuna's two "Trial N failed ..." warnings for the trials in :attr:`numbers`: the
    traceback warning of a trial that raised one of ``exceptions``, and the "failed with value"
    warning of every trial in :attr:`numbers` (whoever adds a trial there reports it instead, in
    one line or not at all). Install it on :data:`OPTIMIZE_LOGGER`."""

    def __init__(self, exceptions: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.exceptions = exceptions
        self.numbers: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.exceptions):
            return False
        message = record.getMessage()
        return not any(message.startswith(f"Trial {number} failed with value ") for number in self.numbers)
