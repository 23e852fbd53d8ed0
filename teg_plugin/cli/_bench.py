"""``teg-nas bench``: correlation with benchmark accuracy, and speed against the plain implementation."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

from teg_plugin._checks import check_fraction
from teg_plugin.benchmarks.correlation import DEFAULT_BOOTSTRAP, DEFAULT_TOP_FRACTION
from teg_plugin.benchmarks.environment import environment
from teg_plugin.cli._common import (
    STRATEGY_CHOICES,
    add_final_choice_options,
    add_scoring_options,
    add_search_rule_option,
    add_space_option,
    check_search_rule,
    count_arg,
    make_scorer,
    rank_rule_arg,
    render,
    seed_arg,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="benchmarks: ranking quality, search quality, speed and fault tolerance")
    which = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")

    corr = which.add_parser("correlation", help="Kendall/Spearman of TEG vs NB201 accuracy, beside published proxies")
    corr.add_argument("--truth", required=True, help="NB201 ground-truth CSV (arch_str, cifar10_test, ...)")
    corr.add_argument("--truth-column", default="cifar10_test", help="accuracy column (default: %(default)s)")
    corr.add_argument(
        "--naslib", default=None, help="NAS-Bench-Suite-Zero proxy CSV; the sample is drawn among its archs"
    )
    corr.add_argument("--proxies", default=None, help="CSV of published proxies for all archs (NASWOT v1, Zen)")
    corr.add_argument(
        "--sample", type=int, default=100, metavar="K", help="architectures to score (default: %(default)s)"
    )
    corr.add_argument("--seed", type=seed_arg, default=0, help="sampling (and bootstrap) seed (default: %(default)s)")
    corr.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        metavar="N",
        help="bootstrap resamples for the 95%% interval of Kendall tau; 0: none; none below 10 pairs (default: %(default)s)",
    )
    corr.add_argument(
        "--top",
        type=float,
        default=DEFAULT_TOP_FRACTION,
        metavar="FRACTION",
        help="fraction of the sample for the top-end columns: tau among the most accurate, and the mean "
        "accuracy of the ones each predictor ranks best (default: %(default)s)",
    )
    corr.add_argument(
        "--rule",
        type=rank_rule_arg,
        action="append",
        default=[],
        metavar="RULE",
        help="also report the rank-sum under this rank rule, term=weight pairs of the indicators, "
        "params (the parameter count) and zero-cost proxies (computed on the sampled archs), e.g. "
        "'regions,kr_mse', 'ntk_cond,regions,kr_mse,params=1' or 'ntk_cond,regions,kr_mse,synflow=0.5' "
        "(repeat for several)",
    )
    corr.add_argument(
        "--compute-proxies",
        default=None,
        metavar="NAMES",
        help="zero-cost proxies to compute on the sampled archs (comma-separated, or all), each a row "
        "beside the published columns, and a table checking them against those",
    )
    _common(corr)
    corr.set_defaults(run=_run_correlation, space="nas-bench-201")

    speed = which.add_parser("speed", help="fast path vs plain implementation of the same definitions")
    speed.add_argument(
        "--archs", type=int, default=5, metavar="K", help="random architectures to time (default: %(default)s)"
    )
    speed.add_argument("--seed", type=seed_arg, default=0, help="sampling seed (default: %(default)s)")
    speed.add_argument(
        "--other-ntk",
        action="store_true",
        help="also time the fast path under the other --ntk mode, on the same architectures and inputs",
    )
    add_space_option(speed)
    _common(speed)
    speed.set_defaults(run=_run_speed)

    search = which.add_parser("search", help="accuracy of the architecture each strategy finds, over several seeds")
    search.add_argument("--strategy", choices=STRATEGY_CHOICES, default="evolution")
    search.add_argument(
        "--seeds", type=int, default=5, help="number of seeds: S..S+N-1 for --first-seed S (default: %(default)s)"
    )
    search.add_argument(
        "--first-seed", type=count_arg, default=0, metavar="S", help="the first seed (default: %(default)s)"
    )
    add_search_rule_option(search)
    search.add_argument(
        "--budget", type=int, default=100, help="architectures proposed per seed (default: %(default)s)"
    )
    search.add_argument("--truth", required=True, help="NB201 ground-truth CSV (arch_str, cifar10_test, cifar10_valid)")
    search.add_argument(
        "--vary-score-seed",
        action="store_true",
        help="seed S also scores with --score-seed + S (new inputs and initial weights per seed, as "
        "independent runs); needed for prune, which is deterministic for one score seed",
    )
    add_final_choice_options(search)
    _common(search)
    search.set_defaults(run=_run_search, space="nas-bench-201")

    _add_faults_parser(which)


def _add_faults_parser(which: argparse._SubParsersAction) -> None:
    faults = which.add_parser(
        "faults",
        help="fault injection: K search workers on one study, a random one SIGKILLed and restarted every ~N s",
        description="Start K `teg-nas search` workers on one study (and one fresh SQLite score cache), SIGKILL a "
        "random one every ~N seconds and restart it, then check the study: exactly the budget of "
        "counted trials, none lost or duplicated, attributes intact, the cache intact. Exit 1 if a "
        "check fails.",
    )
    faults.add_argument(
        "--storage",
        nargs="+",
        action="extend",
        metavar="STORAGE",
        help="storages to run on, one run each: 'sqlite' or 'journal' (a new file in --workdir), or "
        "an Optuna storage URL such as postgresql://... (repeatable; default: sqlite journal)",
    )
    faults.add_argument("--workers", type=int, default=4, help="worker processes at once, K (default: %(default)s)")
    faults.add_argument("--budget", type=int, default=100, help="trials the study must end with (default: %(default)s)")
    faults.add_argument(
        "--kill-every",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="mean seconds between kills, each uniform in [0.5, 1.5] times it (default: %(default)s)",
    )
    faults.add_argument(
        "--max-kills", type=int, default=None, metavar="N", help="stop killing after N kills (default: none)"
    )
    faults.add_argument(
        "--seed", type=seed_arg, default=0, help="search seed; also picks victims and intervals (default: %(default)s)"
    )
    faults.add_argument("--strategy", choices=[s for s in STRATEGY_CHOICES if s != "prune"], default="evolution")
    faults.add_argument(
        "--workdir", default="teg-faults", help="folder for the storages, caches and worker logs (default: %(default)s)"
    )
    faults.add_argument(
        "--timeout", type=float, default=3600.0, metavar="SECONDS", help="per storage (default: %(default)s)"
    )
    add_space_option(faults)
    _common(faults)
    faults.set_defaults(run=_run_faults)


def _run_faults(args: argparse.Namespace) -> int:
    from teg_plugin._database import hide_password
    from teg_plugin.benchmarks.faults import run_faults
    from teg_plugin.spaces import space_name

    for name, value, minimum in (
        ("--workers", args.workers, 1),
        ("--budget", args.budget, 1),
        ("--max-kills", args.max_kills, 0),
    ):
        if value is not None and value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if not (math.isfinite(args.kill_every) and args.kill_every > 0) or not (
        math.isfinite(args.timeout) and args.timeout > 0
    ):
        raise ValueError("--kill-every and --timeout must be positive numbers of seconds")
    if args.cache is not None or args.no_cache:
        raise ValueError(
            "bench faults gives each run a fresh SQLite score cache in --workdir; leave out --cache/--no-cache"
        )
    args.space = space_name(args.space)
    args.no_cache = True  # the scorer here only computes the fingerprint the workers' cache keys carry
    scorer = make_scorer(args)
    workdir = Path(args.workdir).expanduser()
    workdir.mkdir(parents=True, exist_ok=True)
    options = [
        "--space",
        args.space,
        "--strategy",
        args.strategy,
        "--seed",
        str(args.seed),
        "--batch-size",
        str(args.batch_size),
        "--repeat",
        str(args.repeat),
        "--score-seed",
        str(args.score_seed),
        "--init",
        args.init,
        "--device",
        args.device,
    ]
    if args.dataset is not None:
        options += ["--dataset", args.dataset]
    if args.data_root is not None:
        options += ["--data-root", args.data_root]
    reports = []
    for kind in args.storage or ["sqlite", "journal"]:
        storage = _fault_storage(kind, workdir)
        if not args.quiet:
            print(f"teg-nas: bench faults on {hide_password(storage)} ...", file=sys.stderr)
        reports.append(
            run_faults(
                storage,
                workdir=workdir,
                search_options=options,
                fingerprint=scorer.fingerprint,
                space_name=args.space,
                workers=args.workers,
                budget=args.budget,
                kill_every=args.kill_every,
                max_kills=args.max_kills,
                seed=args.seed,
                timeout=args.timeout,
            )
        )
    rows = [r.to_dict() for r in reports]
    if args.format == "json":
        print(
            json.dumps({"data": scorer.data.source, "environment": environment(scorer.device), "runs": rows}, indent=2)
        )
    else:
        print(
            f"# {args.workers} workers, budget {args.budget}, a kill every ~{args.kill_every:g} s; "
            f"data: {scorer.data.source}\n# {_environment_line(scorer.device)}"
        )
        for row in rows:
            row["worker_errors"] = len(row["worker_errors"])
        print(
            render(
                rows,
                "table",
                (
                    "storage",
                    "kills",
                    "restarts",
                    "counted",
                    "failed",
                    "left_running",
                    "duplicates",
                    "lost",
                    "bad_attributes",
                    "cache_rows",
                    "cache_integrity",
                    "worker_errors",
                    "wall_s",
                    "ok",
                ),
            )
        )
    for report in reports:
        for error in report.worker_errors:
            print(f"teg-nas: {report.storage}: {error}", file=sys.stderr)
    return 0 if all(r.ok for r in reports) else 1


def _fault_storage(kind: str, workdir: Path) -> str:
    """A storage for one fault run: a fresh file for 'sqlite' and 'journal', else the URL given."""
    import uuid

    name = f"faults-{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        return f"sqlite:///{(workdir / f'{name}.db').resolve()}"
    if kind == "journal":
        return f"journal:{(workdir / f'{name}.log').resolve()}"
    return kind


def _common(parser: argparse.ArgumentParser) -> None:
    add_scoring_options(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_correlation(args: argparse.Namespace) -> int:
    from teg_plugin.benchmarks.correlation import run_correlation

    if args.bootstrap < 0:
        raise ValueError(f"--bootstrap must be 0 (no interval) or more resamples, got {args.bootstrap}")
    check_fraction("--top", args.top)
    names: tuple[str, ...] = ()
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
        rules=args.rule,
        compute_proxies=names,
    )
    # NaN (fewer than 3 pairs, or a constant predictor) becomes null: json.dumps would write NaN, not JSON.
    dicts: list[dict[str, Any]] = [
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
    top = {
        "fraction": report.top_fraction,
        "count": report.top_count,
        "ceiling_accuracy": report.top_ceiling,
        "sample_mean_accuracy": report.sample_mean,
    }
    checks = [_check_dict(c) for c in report.proxy_checks]
    if args.format == "json":
        print(
            json.dumps(
                {
                    "truth_column": args.truth_column,
                    "data": scorer.data.source,
                    "environment": environment(scorer.device),
                    "top": top,
                    "rows": dicts,
                    "proxy_checks": checks,
                },
                indent=2,
            )
        )
    else:
        print(f"# {args.sample} NB201 archs (seed {args.seed}) vs {args.truth_column}; data: {scorer.data.source}")
        print(f"# {_environment_line(scorer.device)}")
        print(
            f"# top {report.top_fraction:g} = {report.top_count} archs: kendall_tau_top is tau among the most accurate "
            f"(n_top of them have a prediction); top_mean_accuracy is the mean {args.truth_column} of the "
            f"{report.top_count} each predictor ranks best (at most {report.top_ceiling:.2f}; "
            f"the sample's mean {report.sample_mean:.2f})"
        )
        for row in dicts:
            lo, hi = row["kendall_tau_ci95"]
            row["kendall_tau_ci95"] = "" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"
        print(
            render(
                dicts,
                "table",
                (
                    "predictor",
                    "n",
                    "kendall_tau",
                    "kendall_tau_ci95",
                    "spearman_rho",
                    "n_top",
                    "kendall_tau_top",
                    "top_mean_accuracy",
                ),
            )
        )
        if checks:
            print(
                "\n# computed proxies vs the published ones, on the n archs where both are defined (n_bad: "
                "computed ones flagged); seconds: median per arch here, published_seconds: the table's median"
            )
            print(
                render(
                    checks,
                    "table",
                    (
                        "proxy",
                        "published",
                        "n",
                        "n_bad",
                        "spearman_vs_published",
                        "kendall_tau",
                        "kendall_tau_published",
                        "kendall_tau_difference",
                        "seconds",
                        "published_seconds",
                        "within_3x_time",
                    ),
                )
            )
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

    from teg_plugin.benchmarks.search import largest_network_accuracy, run_search_benchmark

    if args.seeds < 1 or args.budget < 1:
        raise ValueError("--seeds and --budget must be at least 1")
    check_search_rule(args.strategy, args.rule)
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
        list(range(args.first_seed, args.first_seed + args.seeds)),
        args.budget,
        args.truth,
        progress=not args.quiet,
        vary_score_seed=args.vary_score_seed,
        confirm_top=args.confirm_top,
        confirm_seeds=args.confirm_seeds,
        confirm_rule=args.confirm_rule,
        search_rule=args.rule,
    )
    largest = largest_network_accuracy(args.truth)
    picks = {field: summary.mean(field) for field in PICK_FIELDS}
    result = {
        "strategy": summary.strategy,
        "budget": summary.budget,
        "seeds": args.seeds,
        "vary_score_seed": args.vary_score_seed,
        "confirm_top": summary.confirm_top,
        "confirm_seeds": summary.confirm_seeds,
        "confirm_rule": summary.confirm_rule,
        "search_rule": summary.search_rule,
        "protocol": {"init": scorer.config.init, "ntk": scorer.config.ntk, "repeat": scorer.config.repeat},
        "cifar10_test_mean": summary.test_mean,
        "cifar10_test_std": summary.test_std,
        "cifar10_valid_mean": summary.mean("valid_accuracy"),
        "picks_cifar10_test_mean": picks,
        "largest_network_in_space": None if largest is None else {"arch": largest[0], "cifar10_test": largest[1]},
        "best_proposed_cifar10_test_mean": summary.best_proposed_test_mean,
        "seconds_per_seed_mean": summary.seconds_mean,
        "data": scorer.data.source,
        "environment": environment(scorer.device),
        "runs": [asdict(r) for r in summary.runs],
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return 0
    final = (
        f"final choice: best {summary.confirm_top} re-ranked over {summary.confirm_seeds} further score seeds "
        f"({summary.confirm_rule})"
        if summary.confirm_top and summary.confirm_seeds
        else "no final choice"
    )
    print(
        f"# {summary.strategy} ranking by {summary.search_rule}, budget {summary.budget}, {args.seeds} seeds; {final}; init {scorer.config.init}, "
        f"ntk {scorer.config.ntk}; data: {scorer.data.source}\n"
        f"# {_environment_line(scorer.device)}\n"
        f"CIFAR-10 test of the chosen arch: {summary.test_mean:.2f} +- {summary.test_std:.2f} "
        f"(valid {summary.mean('valid_accuracy'):.2f}; before the final choice {summary.mean('before_confirmation_test_accuracy'):.2f}, "
        f"valid {summary.mean('before_confirmation_valid_accuracy'):.2f}; {summary.seconds_mean:.0f} s per seed)"
    )
    rows = [
        {
            "seed": r.seed,
            "score_seed": r.score_seed,
            **{PICK_FIELDS[f]: getattr(r, f) for f in PICK_FIELDS},
            "n_distinct": r.n_distinct,
            "seconds": r.seconds,
            "best_arch": r.best_arch,
        }
        for r in summary.runs
    ]
    mean_row = {
        "seed": "mean",
        **{PICK_FIELDS[f]: picks[f] for f in PICK_FIELDS},
        "n_distinct": statistics.fmean(r.n_distinct for r in summary.runs),
        "seconds": summary.seconds_mean,
        "best_arch": "" if largest is None else f"largest in space: {largest[1]:.2f}",
    }
    print(
        render(
            [*rows, mean_row],
            "table",
            ("seed", "score_seed", *PICK_FIELDS.values(), "n_distinct", "seconds", "best_arch"),
        )
    )
    return 0


#: bench search's pick columns: SearchRun field -> column name (CIFAR-10 test of each pick).
PICK_FIELDS = {
    "test_accuracy": "pick",
    "before_confirmation_test_accuracy": "before_final",
    "random_pick_test_accuracy": "random",
    "largest_proposed_test_accuracy": "largest",
    "best_proposed_test_accuracy": "oracle",
}


def _run_speed(args: argparse.Namespace) -> int:
    from teg_plugin.benchmarks.speed import run_speed

    scorer = make_scorer(args)
    result = run_speed(scorer, args.archs, args.seed, progress=not args.quiet, other_ntk=args.other_ntk)
    summary = {
        **environment(scorer.device),
        "archs": len(result.archs),
        "repeat": scorer.config.repeat,
        "fast_median_s": result.fast_median,
        "plain_median_s": result.plain_median,
        "speedup": result.speedup,
        "same_ranking": result.same_ranking,
        "max_relative_difference": result.max_relative_difference,
        "ntk": scorer.config.ntk,
    }
    if result.other_ntk is not None:
        summary[f"fast_median_s_{result.other_ntk}"] = result.other_ntk_median
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
