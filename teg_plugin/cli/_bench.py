"""``teg-nas bench``: correlation with benchmark accuracy, and speed against the plain implementation."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from teg_plugin._checks import check_fraction
from teg_plugin.benchmarks.correlation import DEFAULT_BOOTSTRAP, DEFAULT_TOP_FRACTION
from teg_plugin.benchmarks.environment import environment
from teg_plugin.cli._common import add_scoring_options, add_space_option, make_scorer, render, seed_arg


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks: ranking quality, search quality and speed")
    which = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")

    corr = which.add_parser("correlation", help="Kendall/Spearman of TEG vs NB201 accuracy, beside published proxies")
    corr.add_argument("--truth", required=True, help="NB201 ground-truth CSV (arch_str, cifar10_test, ...)")
    corr.add_argument("--truth-column", default="cifar10_test", help="accuracy column (default: %(default)s)")
    corr.add_argument("--naslib", default=None, help="NAS-Bench-Suite-Zero proxy CSV; the sample is drawn among its archs")
    corr.add_argument("--proxies", default=None, help="CSV of published proxies for all archs (NASWOT v1, Zen)")
    corr.add_argument("--sample", type=int, default=100, metavar="K", help="architectures to score (default: %(default)s)")
    corr.add_argument("--seed", type=seed_arg, default=0, help="sampling (and bootstrap) seed (default: %(default)s)")
    corr.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, metavar="N",
                      help="bootstrap resamples for the 95%% interval of Kendall tau; 0: none; none below 10 pairs (default: %(default)s)")
    corr.add_argument("--top", type=float, default=DEFAULT_TOP_FRACTION, metavar="FRACTION",
                      help="fraction of the sample for the top-end columns: tau among the most accurate, and the mean "
                           "accuracy of the ones each predictor ranks best (default: %(default)s)")
    corr.add_argument("--compute-proxies", default=None, metavar="NAMES",
                      help="zero-cost proxies to compute on the sampled archs (comma-separated, or all), each a row "
                           "beside the published columns, and a table checking them against those")
    _common(corr)
    corr.set_defaults(run=_run_correlation, space="nas-bench-201")

    speed = which.add_parser("speed", help="fast path vs plain implementation of the same definitions")
    speed.add_argument("--archs", type=int, default=5, metavar="K", help="random architectures to time (default: %(default)s)")
    speed.add_argument("--seed", type=seed_arg, default=0, help="sampling seed (default: %(default)s)")
    add_space_option(speed)
    _common(speed)
    speed.set_defaults(run=_run_speed)

    search = which.add_parser("search", help="accuracy of the architecture each strategy finds, over several seeds")
    search.add_argument("--strategy", choices=("evolution", "reinforce", "prune", "random"), default="evolution")
    search.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default: %(default)s)")
    search.add_argument("--budget", type=int, default=100, help="architectures proposed per seed (default: %(default)s)")
    search.add_argument("--truth", required=True, help="NB201 ground-truth CSV (arch_str, cifar10_test, cifar10_valid)")
    search.add_argument("--vary-score-seed", action="store_true",
                        help="seed S also scores with --score-seed + S (new inputs and initial weights per seed, as "
                             "independent runs); needed for prune, which is deterministic for one score seed")
    _common(search)
    search.set_defaults(run=_run_search, space="nas-bench-201")


def _common(parser: argparse.ArgumentParser) -> None:
    add_scoring_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_correlation(args: argparse.Namespace) -> int:
    from teg_plugin.benchmarks.correlation import run_correlation

    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be 0 (no interval) or more resamples, got {args.bootstrap}")
    check_fraction("--top", args.top)
    names = ()
    if args.compute_proxies is not None:
        from teg_plugin.proxies import parse_proxy_names

        names = parse_proxy_names(args.compute_proxies)  # before any scoring
    scorer = make_scorer(args)
    report = run_correlation(
        scorer,
        args.truth,
        args.sample,
        args.seed,
        naslib_path=args.naslib,
        proxies_path=args.proxies,
        truth_column=args.truth_column,
        progress=not args.quiet,
        bootstrap=args.bootstrap,
        top=args.top,
        compute_proxies=names,
    )
    # NaN (fewer than 3 pairs, or a constant predictor) becomes null: json.dumps would write NaN, not JSON.
    dicts = [
        {
            "predictor": r.name,
            "n": r.n,
            "kendall_tau": _finite(r.kendall),
            "kendall_tau_ci95": [_finite(bound) for bound in r.kendall_ci],
            "spearman_rho": _finite(r.spearman),
            "n_top": r.n_top,
            "kendall_tau_top": _finite(r.kendall_top),
            "top_mean_accuracy": _finite(r.top_accuracy),
        }
        for r in report.rows
    ]
    top = {"fraction": report.top_fraction, "count": report.top_count,
           "ceiling_accuracy": report.top_ceiling, "sample_mean_accuracy": report.sample_mean}
    checks = [_check_dict(c) for c in report.proxy_checks]
    if args.format == "json":
        print(json.dumps({"truth_column": args.truth_column, "data": scorer.data.source,
                          "environment": environment(scorer.device), "top": top, "rows": dicts,
                          "proxy_checks": checks}, indent=2))
    else:
        print(f"# {args.sample} NB201 archs (seed {args.seed}) vs {args.truth_column}; data: {scorer.data.source}")
        print(f"# {_environment_line(scorer.device)}")
        print(f"# top {report.top_fraction:g} = {report.top_count} archs: kendall_tau_top is tau among the most accurate "
              f"(n_top of them have a prediction); top_mean_accuracy is the mean {args.truth_column} of the "
              f"{report.top_count} each predictor ranks best (at most {report.top_ceiling:.2f}; "
              f"the sample's mean {report.sample_mean:.2f})")
        for row in dicts:
            lo, hi = row["kendall_tau_ci95"]
            row["kendall_tau_ci95"] = "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"
        print(render(dicts, "table", ("predictor", "n", "kendall_tau", "kendall_tau_ci95", "spearman_rho",
                                      "n_top", "kendall_tau_top", "top_mean_accuracy")))
        if checks:
            print("\n# computed proxies vs the published ones, on the n archs where both are defined (n_bad: "
                  "computed ones flagged); seconds: median per arch here, published_seconds: the table's median")
            print(render(checks, "table", ("proxy", "published", "n", "n_bad", "spearman_vs_published",
                                           "kendall_tau", "kendall_tau_published", "kendall_tau_difference",
                                           "seconds", "published_seconds", "within_3x_time")))
    return 0


def _check_dict(check: Any) -> dict[str, Any]:
    return {
        "proxy": check.name,
        "published": check.published,
        "n": check.n,
        "n_bad": check.n_bad,
        "spearman_vs_published": _finite(check.spearman_published),
        "kendall_tau": _finite(check.kendall_computed),
        "kendall_tau_published": _finite(check.kendall_published),
        "kendall_tau_difference": _finite(check.kendall_computed - check.kendall_published),
        "seconds": _finite(check.seconds),
        "published_seconds": _finite(check.published_seconds),
        "within_3x_time": check.within_time,
    }


def _run_search(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from teg_plugin.benchmarks.search import run_search_benchmark

    if args.seeds < 1 or args.budget < 1:
        raise ValueError("--seeds and --budget must be at least 1")
    if args.strategy == "prune" and args.seeds > 1 and not args.vary_score_seed:
        print(
            "teg-plugin: pruning is deterministic for one score seed, so its seeds pick the same architecture; "
            "pass --vary-score-seed for independent runs",
            file=sys.stderr,
        )
    scorer = make_scorer(args)
    summary = run_search_benchmark(
        scorer,
        args.strategy,
        list(range(args.seeds)),
        args.budget,
        args.truth,
        progress=not args.quiet,
        vary_score_seed=args.vary_score_seed,
    )
    result = {
        "strategy": summary.strategy,
        "budget": summary.budget,
        "seeds": args.seeds,
        "vary_score_seed": args.vary_score_seed,
        "cifar10_test_mean": summary.test_mean,
        "cifar10_test_std": summary.test_std,
        "best_proposed_cifar10_test_mean": summary.best_proposed_test_mean,
        "seconds_per_seed_mean": summary.seconds_mean,
        "data": scorer.data.source,
        "environment": environment(scorer.device),
        "runs": [asdict(r) for r in summary.runs],
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(
            f"# {summary.strategy}, budget {summary.budget}, {args.seeds} seeds; data: {scorer.data.source}\n"
            f"# {_environment_line(scorer.device)}\n"
            f"CIFAR-10 test of the chosen arch: {summary.test_mean:.2f} +- {summary.test_std:.2f}  "
            f"({summary.seconds_mean:.0f} s per seed); the best proposed arch's: {summary.best_proposed_test_mean:.2f}"
        )
        rows = [asdict(r) for r in summary.runs]
        print(render(rows, "table", ("seed", "score_seed", "test_accuracy", "valid_accuracy", "best_proposed_test_accuracy", "n_distinct", "n_supernet_evaluations", "seconds", "best_arch")))
    return 0


def _run_speed(args: argparse.Namespace) -> int:
    from teg_plugin.benchmarks.speed import run_speed

    scorer = make_scorer(args)
    result = run_speed(scorer, args.archs, args.seed, progress=not args.quiet)
    summary = {
        **environment(scorer.device),
        "archs": len(result.archs),
        "repeat": scorer.config.repeat,
        "fast_median_s": result.fast_median,
        "plain_median_s": result.plain_median,
        "speedup": result.speedup,
        "same_ranking": result.same_ranking,
        "max_relative_difference": result.max_relative_difference,
    }
    if args.format == "json":
        summary["fast_seconds"] = result.fast_seconds
        summary["plain_seconds"] = result.plain_seconds
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:24s} {value:.4g}" if isinstance(value, float) else f"{key:24s} {value}")
    return 0 if result.same_ranking else 1


def _environment_line(device: Any) -> str:
    return "; ".join(f"{key}: {value}" for key, value in environment(device).items())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
