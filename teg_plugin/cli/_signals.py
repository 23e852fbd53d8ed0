"""Taking a signal over as Python itself does: only in the main thread, and never an ignored one;
SIGTERM taken over as Ctrl-C for a command."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


def take_over(signum: int, handler: Callable[[int, FrameType | None], Any]) -> Any:
    """Handle ``signum`` with ``handler``; returns what to restore when done.

    That is the previous handler, or ``signal.SIG_IGN`` when the signal was ignored (``nohup``, a
    background job of a non-interactive shell): an ignored signal stays ignored. Outside the main
    thread, where signals cannot be handled, nothing changes and the result is ``None``.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signum) == signal.SIG_IGN:
        return signal.SIG_IGN
    return signal.signal(signum, handler)


def stop_on_sigterm() -> Any:
    """Treat SIGTERM (``kill``, ``timeout``, batch schedulers) as Ctrl-C: the running Optuna trial is
    then marked failed instead of being left RUNNING, and a resumed search does not wait for it.

    Returns the handler to restore afterwards (see :func:`take_over`: ``None``
    outside the main thread, where nothing is changed; an ignored SIGTERM stays ignored).
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    return take_over(signal.SIGTERM, interrupt)
