"""``teg-nas``: argument parsing and dispatch. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from teg_plugin import __version__
from teg_plugin._database import MissingDriverError
from teg_plugin.cli._common import UsageError, database_error_message, silence_experimental_warnings
from teg_plugin.cli._signals import stop_on_sigterm


def build_parser() -> argparse.ArgumentParser:
    from teg_plugin.cli import _bench, _plot, _score, _search

    parser = argparse.ArgumentParser(
        prog="teg-nas", description="Training-free neural architecture search with TEG indicators (TEG-NAS)."
    )
    parser.add_argument("--version", action="version", version=f"teg-nas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _search.add_parser(sub)
    _score.add_parser(sub)
    _bench.add_parser(sub)
    _plot.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    silence_experimental_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    previous_sigterm = stop_on_sigterm()
    try:
        return int(args.run(args) or 0)
    except UsageError as err:
        print(f"teg-nas {args.command}: error: {err} (see teg-nas {args.command} --help)", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of stdout went away (`teg-nas ... | head`): stop quietly, as a killed pipe writer does.
        # Point stdout at /dev/null so that flushing it at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, MissingDriverError) as err:  # OSError: e.g. --out naming a file
        print(f"teg-nas: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        message = database_error_message(err, args)
        if message is None:
            raise
        print(f"teg-nas: error: {message}", file=sys.stderr)
        return 2
    finally:  # a KeyboardInterrupt goes on to teg_plugin.cli.main, which reports it
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
