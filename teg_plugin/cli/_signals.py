"""Taking a signal over as Python itself does: only in the main thread, and never an ignored one."""

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
