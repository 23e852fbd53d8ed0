"""The ``teg-nas`` command line."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Run ``teg-nas`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Ctrl-C (or SIGTERM, during a command) ends it with one line and status 130, at any moment:
    also while it starts, when importing PyTorch and SciPy takes seconds.
    """
    try:
        from teg_plugin.cli._main import main as _main

        return _main(argv)
    except KeyboardInterrupt:
        print("teg-nas: interrupted", file=sys.stderr)
        return 130
