"""``teg-nas score``: TEG indicators and the rank of given or sampled architectures."""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Hashable
from typing import TYPE_CHECKING

from teg_plugin.cli._common import (
    UsageError,
    add_scoring_options,
    add_space_option,
    make_scorer,
    rank_rule_arg,
    render,
    seed_arg,
)

if TYPE_CHECKING:
    from teg_plugin.spaces import SearchSpace

COLUMNS = ("rank", "rank_sum", "index", "ntk_cond", "regions", "kr_mse", "bad", "reason", "seconds", "arch")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "score",
        help="score architectures with the TEG indicators and rank them",
        description="Score architectures (training-free) and rank them by the TEG rank-sum, or by --rule.",
    )
    add_space_option(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    # "extend": a repeated flag adds its values (--index 1 --index 2 scores both, as --index 1 2 does).
    which.add_argument("--arch", nargs="+", action="extend", metavar="STR", help="architecture strings (repeatable)")
    which.add_argument(
        "--index",
        nargs="+",
        action="extend",
        type=int,
        metavar="N",
        help="benchmark indices (NAS-Bench-201; repeatable)",
    )
    which.add_argument("--sample", type=int, metavar="K", help="score K different random architectures")
    parser.add_argument(
        "--seed", type=seed_arg, default=None, help="seed that draws the --sample architectures (default: 0)"
    )
    add_scoring_options(parser)
    parser.add_argument(
        "--proxies",
        default=None,
        metavar="NAMES",
        help="also compute zero-cost proxies, a column each (comma-separated: params, flops, synflow, "
        "snip, grasp, fisher, grad_norm, jacov, nwot, epe_nas, l2_norm, zen; or all)",
    )
    parser.add_argument(
        "--rule",
        type=rank_rule_arg,
        default=None,
        metavar="RULE",
        help="rank (the rank and rank_sum columns) by this rank rule: term=weight pairs of the "
        "indicators, params (the parameter count) and proxies, e.g. 'nwot' or "
        "'ntk_cond,regions,kr_mse,synflow=0.5'; the proxies it names get a column each "
        "(default: the paper's rank-sum, ntk_cond,regions,kr_mse)",
    )
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format (default: %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from teg_plugin.spaces import get_space

    if args.seed is not None and args.sample is None:
        raise UsageError(
            "--seed only chooses the architectures of --sample; --score-seed seeds the scoring "
            "(inputs and initial weights)"
        )
    space = get_space(args.space)
    proxies: tuple[str, ...] = ()
    if args.proxies is not None:
        from teg_plugin.proxies import parse_proxy_names

        proxies = parse_proxy_names(args.proxies)  # before anything is scored
    if args.arch:
        archs = [_parse(space, text) for text in args.arch]
    elif args.index:
        if not hasattr(space, "arch_at"):
            raise ValueError(f"--index needs a benchmark space; {space.name} has no index")
        try:
            archs = [space.arch_at(i) for i in args.index]
        except IndexError as err:  # an out-of-range index is bad input, not a crash
            raise ValueError(str(err)) from None
    else:
        archs = space.sample_distinct(random.Random(0 if args.seed is None else args.seed), args.sample)
    if args.rule is not None:
        proxies = tuple(dict.fromkeys((*proxies, *args.rule.proxies)))
    scorer = make_scorer(args)
    ranked = scorer.rank(archs, rule=args.rule, progress=not args.quiet)
    rows = [r.to_dict() for r in ranked]
    if proxies:
        values = scorer.proxies(archs, proxies, progress=not args.quiet)
        for row, row_values in zip(rows, values):
            row.update((name, value if math.isfinite(value) else None) for name, value in row_values.items())
    at = COLUMNS.index("bad")  # proxies after T, E, G
    print(render(rows, args.format, COLUMNS[:at] + proxies + COLUMNS[at:]))
    return 0


def _parse(space: SearchSpace, text: str) -> Hashable:
    """``text`` parsed by ``space``; a DARTS genotype given to another space gets a hint."""
    try:
        return space.parse(text)
    except ValueError as err:
        if text.lstrip().startswith("Genotype(") and space.name != "darts":
            raise ValueError(f"{err} (a DARTS genotype? add --space darts)") from err
        raise
