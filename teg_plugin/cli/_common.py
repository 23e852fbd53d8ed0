"""What several subcommands share: their options, turning those into library objects, and how a
command reports bad input and database errors."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import warnings
from collections.abc import Sequence
from typing import Any

from teg_plugin._checks import MAX_SEED, check_seed
from teg_plugin.config import INIT_SCHEMES, NTK_MODES, TEGConfig
from teg_plugin.data import DATASET_NAMES
from teg_plugin.scorer import DEVICES, TEGScorer
from teg_plugin.scores import PAPER_RULE, RankRule
from teg_plugin.spaces import space_names
from teg_plugin.strategies import STRATEGY_NAMES

#: ``--strategy`` choices in the order the help lists them: :data:`STRATEGY_NAMES` with the unguided
#: random baseline moved last, so that the TEG-guided ones, led by the default (evolution), come first.
STRATEGY_CHOICES: tuple[str, ...] = tuple(sorted(STRATEGY_NAMES, key=lambda name: name == "random"))


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def silence_experimental_warnings() -> None:
    """Optuna marks long-stable calls we use (metric names, heartbeat) experimental; the docs say it
    once, runs do not (called in every process of a run, worker processes too)."""
    warnings.filterwarnings("ignore", message=r".*is experimental.*")


def database_error_message(err: BaseException, args: argparse.Namespace) -> str | None:
    """One line for a database error that reached the command (the score cache reports its own as
    ``ValueError``, so this is the Optuna storage's); ``None`` for any other error."""
    from teg_plugin._database import database_failure, hide_password

    detail = database_failure(err)
    if detail is None:
        return None
    storage = getattr(args, "storage", None)
    where = f"the storage {hide_password(storage)!r}" if isinstance(storage, str) else "the database"
    return f"{where} failed: {detail}"


def seed_arg(text: str) -> int:
    """argparse type of ``--seed``: an int in ``0 .. 2**32 - 1``, the seeds Optuna and NumPy take."""
    try:
        return check_seed("seed", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int from 0 to {MAX_SEED}, got {text!r}") from None


def add_space_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", default="nas-bench-201", help=f"search space: {', '.join(space_names())}")


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data-root, --download, protocol settings, --device and the cache."""
    defaults = TEGConfig()
    group = parser.add_argument_group("data and scoring protocol")
    group.add_argument(
        "--dataset",
        default=None,
        help=f"{', '.join(DATASET_NAMES)}, or an image-folder path (default: cifar10 if found, else the embedded sample)",
    )
    group.add_argument(
        "--data-root", default=None, help="folder holding the dataset files (default: $TEG_DATA_ROOT or ./data)"
    )
    group.add_argument("--download", action="store_true", help="download the dataset into --data-root if missing")
    group.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="images per NTK batch (default: %(default)s)"
    )
    group.add_argument(
        "--repeat", type=int, default=defaults.repeat, help="random initialisations averaged (default: %(default)s)"
    )
    group.add_argument(
        "--score-seed",
        type=int,
        default=defaults.seed,
        help="seed of the scoring inputs and weights (default: %(default)s)",
    )
    group.add_argument(
        "--init",
        choices=INIT_SCHEMES,
        default=defaults.init,
        help="weight initialisation: torch-default (PyTorch's, which the released TE-NAS and TEG-NAS "
        "code runs) or kaiming-normal (the paper's text) (default: %(default)s)",
    )
    group.add_argument(
        "--ntk",
        choices=NTK_MODES,
        default=defaults.ntk,
        help="NTK Jacobians for T and G: exact (BatchNorm in train mode across the batch) or frozen-bn "
        "(BatchNorm's batch statistics held fixed: per-sample gradients, much faster) (default: %(default)s)",
    )
    group.add_argument("--device", default="auto", choices=DEVICES, help="where to compute (default: %(default)s)")
    cache = group.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        default=None,
        metavar="PATH|URL",
        help="score cache: a SQLite file or a SQLAlchemy URL (default: $TEG_CACHE or ~/.cache/teg-plugin/scores.sqlite)",
    )
    cache.add_argument("--no-cache", action="store_true", help="do not read or write the persistent score cache")


def add_final_choice_options(parser: argparse.ArgumentParser) -> None:
    """--confirm-top, --confirm-seeds and --confirm-rule: the final choice after a search."""
    from teg_plugin.confirm import DEFAULT_CONFIRM_RULE, DEFAULT_CONFIRM_SEEDS, DEFAULT_CONFIRM_TOP, SEARCH_CONFIRM_TOP

    group = parser.add_argument_group("final choice (re-rank the best candidates over further score seeds)")
    group.add_argument(
        "--confirm-top",
        type=count_arg,
        default=SEARCH_CONFIRM_TOP,
        metavar="K",
        help=f"best distinct candidates re-ranked after the search, e.g. {DEFAULT_CONFIRM_TOP}; 0: no final "
        "choice (default: %(default)s)",
    )
    group.add_argument(
        "--confirm-seeds",
        type=count_arg,
        default=DEFAULT_CONFIRM_SEEDS,
        metavar="M",
        help="further score seeds (new inputs and initial weights) per candidate, ranks averaged "
        "with the search's own; 0: none (default: %(default)s)",
    )
    group.add_argument(
        "--confirm-rule",
        type=rank_rule_arg,
        default=DEFAULT_CONFIRM_RULE,
        metavar="RULE",
        help="how candidates are ranked under each seed: term=weight pairs of the indicators, params "
        "(the parameter count) and zero-cost proxies (computed under each seed), e.g. "
        "'ntk_cond,regions,kr_mse' for the paper's rank-sum (default: %(default)s)",
    )


def add_search_rule_option(parser: argparse.ArgumentParser) -> None:
    """--rule: how a search ranks (``teg-nas search`` and ``teg-nas bench search``)."""
    parser.add_argument(
        "--rule",
        type=rank_rule_arg,
        default=PAPER_RULE,
        metavar="RULE",
        help="how the strategy ranks (tournaments, its best, the final choice's candidates): term=weight "
        "pairs of the indicators, params (the parameter count) and zero-cost proxies (computed once "
        "per arch), e.g. 'nwot' or 'ntk_cond,regions,kr_mse,synflow=0.5'; not for prune (default: "
        "%(default)s, the paper's rank-sum)",
    )


def check_search_rule(strategy: str, rule: RankRule) -> None:
    """Refuse ``--rule`` other than the paper's with ``--strategy prune``."""
    if strategy == "prune" and rule != PAPER_RULE:
        raise ValueError(
            "--rule sets how evolution, reinforce and random rank; pruning ranks each removal by the paper's rule"
        )


def count_arg(text: str) -> int:
    """argparse type of a count that may be 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an int >= 0, got {text!r}")
    return value


def rank_rule_arg(text: str) -> RankRule:
    """argparse type of a :class:`~teg_plugin.scores.RankRule` in its text form."""
    try:
        return RankRule.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def make_scorer(args: argparse.Namespace) -> TEGScorer:
    from teg_plugin.cache import ScoreCache
    from teg_plugin.data import load_data
    from teg_plugin.spaces import get_space

    space = get_space(args.space)
    config = TEGConfig.for_space(
        space, batch_size=args.batch_size, repeat=args.repeat, seed=args.score_seed, init=args.init, ntk=args.ntk
    )
    cache = None if args.no_cache else ScoreCache(args.cache)  # before the data: a bad cache fails fast
    data = load_data(args.dataset, args.data_root, download=args.download)
    return TEGScorer(space, data, config, device=args.device, cache=cache)


def render(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str]) -> str:
    """Rows as a JSON list, CSV, or an aligned text table (NaN/None shown as ``-``)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
