"""The ``teg-nas`` command line."""

import signal
import sys
from collections.abc import Callable
from types import FrameType

from teg_plugin.cli._signals import take_over


def main(argv: list[str] | None = None) -> int:
    """Run ``teg-nas`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Ctrl-C (or SIGTERM, during a command) ends it with one line and status 130, at any moment:
    also while it starts, when importing PyTorch and SciPy takes seconds.
    """
    try:
        _main = _import_main()
        return _main(argv)
    except KeyboardInterrupt:
        print("teg-nas: interrupted", file=sys.stderr)
        return 130


def _import_main() -> Callable[[list[str] | None], int]:
    """Import the command's code with Ctrl-C held back until the imports are done, then raise
    ``KeyboardInterrupt`` if it came.

    An interrupt raised inside a third-party import leaves that library half-initialised: seen here
    as a RecursionError in NumPy, a RuntimeError from a PyTorch class body, and CPython then ending
    the process by SIGINT (status -2) after the interrupt had been handled.
    """
    pressed: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pressed.append(signum)

    previous = take_over(signal.SIGINT, hold)
    try:
        from teg_plugin.cli._main import main as _main
    finally:
        if previous is not None and previous is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
    if pressed:
        raise KeyboardInterrupt
    return _main
