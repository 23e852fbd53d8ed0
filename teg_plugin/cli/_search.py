"""``teg-nas search``: the main job — a TEG-guided search stored in an Optuna study."""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from teg_plugin._database import DEFAULT_STORAGE_URL, is_sqlite_memory, journal_path, parse_database_url
from teg_plugin._progress import progress_bar
from teg_plugin.cli._common import (
    STRATEGY_CHOICES,
    add_final_choice_options,
    add_scoring_options,
    add_search_rule_option,
    add_space_option,
    check_search_rule,
    database_error_message,
    make_scorer,
    seed_arg,
    silence_experimental_warnings,
)
from teg_plugin.cli._signals import stop_on_sigterm
from teg_plugin.config import EXACT, LEGACY_INIT, TEGConfig
from teg_plugin.scores import PAPER_RULE
from teg_plugin.spaces import space_name

if TYPE_CHECKING:
    import optuna

    from teg_plugin.scorer import TEGScorer

#: Default budget: ~10 minutes of scoring on a 2-core CPU at the paper's protocol (3 repeats).
DEFAULT_BUDGET = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "search",
        help="search a space guided by TEG scores (an Optuna study you can review in optuna-dashboard)",
        description="Run a training-free, TEG-guided architecture search stored in an Optuna study.",
    )
    add_space_option(parser)
    parser.add_argument(
        "--strategy", choices=STRATEGY_CHOICES, default="evolution", help="search strategy (default: %(default)s)"
    )
    add_search_rule_option(parser)
    parser.add_argument(
        "--budget",
        type=int,
        default=DEFAULT_BUDGET,
        help="architectures (trials) the study holds when done (default: %(default)s)",
    )
    parser.add_argument(
        "--storage", default=DEFAULT_STORAGE_URL, help="Optuna storage URL, or journal:PATH (default: %(default)s)"
    )
    parser.add_argument(
        "--study-name",
        default=None,
        help="study name (default: teg-<space>-<strategy>[-multi][-rule-<rule>]-seed<seed>); an existing study made "
        "with the same settings resumes",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="search seed (default: %(default)s)")
    parser.add_argument(
        "--objective",
        choices=("rank", "multi"),
        default="rank",
        help="rank: one rank-based objective; multi: three objectives (T, E, G) for a Pareto front (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the study and the score cache (default: %(default)s)",
    )
    add_scoring_options(parser)
    add_final_choice_options(parser)
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="result format (default: %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.budget < 1:
        raise ValueError(f"--budget must be at least 1, got {args.budget}")
    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and _in_memory(args.storage):
        raise ValueError(
            f"--workers {args.workers} needs a storage every worker process can open; {args.storage} is an "
            "in-memory database of one process (use --storage sqlite:///FILE.db or journal:FILE)"
        )
    if args.study_name is not None and not args.study_name.strip():
        raise ValueError("--study-name must not be empty (leave it out for the default name)")
    check_search_rule(args.strategy, args.rule)
    args.space = space_name(args.space)  # an alias ("nb201") names the same default study
    if args.study_name is None:
        multi = "-multi" if args.objective == "multi" else ""
        rule = "" if args.rule == PAPER_RULE else f"-rule-{args.rule}"
        args.study_name = f"teg-{args.space}-{args.strategy}{multi}{rule}-seed{args.seed}"
    start = time.perf_counter()
    extra = []
    if args.workers > 1:
        context = multiprocessing.get_context("spawn")
        for _ in range(args.workers - 1):
            worker_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "run"})
            worker_args.quiet = True
            extra.append(context.Process(target=_worker, args=(worker_args,), daemon=False))
        for process in extra:
            process.start()
    try:
        study, scorer = _optimize(args, show_progress=not args.quiet)
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches every worker, but `kill PID` or `timeout` only this process:
        # pass the stop on (each worker then fails its running trial and ends), never wait out their budget.
        for process in extra:
            if process.is_alive():
                process.terminate()
        raise
    finally:
        for process in extra:
            process.join()
    failed = [p.exitcode for p in extra if p.exitcode != 0]
    if failed:
        print(f"teg-nas: warning: {len(failed)} worker(s) exited with status {failed}", file=sys.stderr)
    from teg_plugin.optuna import run_final_choice

    final = run_final_choice(
        study, scorer, top=args.confirm_top, seeds=args.confirm_seeds, rule=args.confirm_rule, progress=not args.quiet
    )
    summary = _summarise(study, scorer, args, time.perf_counter() - start, final)
    _save_to_study(study, summary, use_final_choice=_uses_final_choice(args))
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        _print_text(summary)
    return 0


def _worker(args: argparse.Namespace) -> None:
    silence_experimental_warnings()  # a spawned process starts with the default filters
    previous_sigterm = stop_on_sigterm()
    try:
        _optimize(args, show_progress=False, worker=True)
    except KeyboardInterrupt:  # Ctrl-C reaches every worker: the main process reports it, once
        sys.exit(130)
    except Exception as err:  # one line, as the main process writes its own errors, not a traceback
        message = database_error_message(err, args)
        if message is None and not isinstance(err, (ValueError, OSError, ImportError)):
            raise
        print(f"teg-nas: error: worker {multiprocessing.current_process().name}: {message or err}", file=sys.stderr)
        sys.exit(2)
    finally:
        # A handler that raises must not outlive the search: a SIGTERM during interpreter shutdown
        # then raised KeyboardInterrupt inside PyTorch's finalizers (torch.library's _del_library),
        # half-way through releasing its C++ registrations. After this, SIGTERM just ends the process.
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


def _optimize(args: argparse.Namespace, *, show_progress: bool, worker: bool = False) -> tuple[optuna.Study, TEGScorer]:
    import optuna

    from teg_plugin.cli._interrupt import StopBetweenTrials
    from teg_plugin.optuna import (
        METRIC_NAMES,
        BudgetReached,
        TEGSampler,
        create_storage,
        within_budget,
        zero_cost_objective,
    )
    from teg_plugin.optuna._attrs import stored_arch
    from teg_plugin.optuna._objective import study_directions
    from teg_plugin.strategies import PruningStrategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scorer = make_scorer(args)
    scorer.show_supernet_progress = show_progress
    if args.strategy == "prune":
        scorer.expected_supernet_evaluations = PruningStrategy(
            scorer.space, scorer.score_mask_repeats
        ).planned_evaluations
    storage = create_storage(args.storage)
    sampler = TEGSampler(scorer.space, scorer, strategy=args.strategy, seed=args.seed, rule=args.rule)
    multi = args.objective == "multi"
    directions = study_directions(multi)
    study = optuna.create_study(
        study_name=args.study_name, storage=storage, sampler=sampler, load_if_exists=True, directions=directions
    )
    _check_resumable(study, args, directions, scorer)
    if multi:
        study.set_metric_names(list(METRIC_NAMES))
    else:
        study.set_metric_names(["teg_rank_score"])
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    remaining = max(args.budget - done, 0)
    if remaining == 0:
        if not worker:
            print(
                f"teg-nas: note: study {study.study_name!r} already holds {done} finished trials (--budget "
                f"{args.budget}); nothing to add (raise --budget to search further)",
                file=sys.stderr,
            )
        return study, scorer
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
        optuna.study.MaxTrialsCallback(args.budget, states=finished)
    ]
    bar = progress_bar(args.budget, show_progress, f"search ({args.strategy})", "arch", initial=done)
    if bar is not None:

        def advance(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            bar.n = min(len(study.get_trials(deepcopy=False, states=finished)), args.budget)
            arch = stored_arch(trial.user_attrs)
            bar.set_postfix_str(f"last: {'?' if arch is None else arch}", refresh=False)
            bar.refresh()

        callbacks.append(advance)
    try:
        with StopBetweenTrials(study) as stopper:
            objective = within_budget(
                zero_cost_objective(scorer.space, scorer, multi_objective=multi, rule=args.rule),
                scorer.space,
                args.budget,
            )
            study.optimize(
                stopper.objective(objective),
                n_trials=remaining,
                callbacks=callbacks,
                gc_after_trial=False,
                catch=(BudgetReached,),
            )
    finally:
        if bar is not None:
            bar.close()
    return study, scorer


def _check_resumable(study: Any, args: argparse.Namespace, directions: Sequence[str], scorer: Any) -> None:
    """Refuse to continue a study made with other settings: its trials would be mixed with this search's."""
    from teg_plugin.optuna._attrs import SEARCH_SETTINGS_ATTR, stored_arch

    where = f"study {study.study_name!r} in {args.storage}"
    found = [d.name.lower() for d in study.directions]
    if found != list(directions):
        raise ValueError(
            f"{where} exists with {len(found)} objective(s) {found}; --objective {args.objective} needs {directions}: "
            "choose another --study-name"
        )
    settings = {
        "space": scorer.space.name,
        "strategy": args.strategy,
        "rule": str(args.rule),
        "seed": args.seed,
        "objective": args.objective,
        "scoring_fingerprint": scorer.fingerprint,  # protocol, data, inputs
        "init": scorer.config.init,
        "ntk": scorer.config.ntk,
    }
    stored = study.user_attrs.get(SEARCH_SETTINGS_ATTR)
    if stored is None:
        trials = study.get_trials(deepcopy=False)
        choices = set(scorer.space.choices())
        foreign = [t.number for t in trials if set(t.params) != choices or stored_arch(t.user_attrs) is None]
        if foreign:
            raise ValueError(
                f"{where} holds trials that are not {scorer.space.name} architectures searched by teg-nas "
                f"(trial {foreign[0]}, ...): choose another --study-name"
            )
        study.set_user_attr(SEARCH_SETTINGS_ATTR, settings)  # a new study (or one of an earlier teg-nas version)
        return
    # Studies of teg-nas 0.1 stored neither init nor ntk: theirs were kaiming-normal and exact; and
    # studies made before --rule ranked by the paper's rule.
    stored = {"init": LEGACY_INIT, "ntk": EXACT, "rule": str(PAPER_RULE), **stored}
    differ = [
        f"{key} {stored.get(key)!r} (now {value!r})" for key, value in settings.items() if stored.get(key) != value
    ]
    if differ:
        if stored.get("scoring_fingerprint") != settings["scoring_fingerprint"]:
            differ.append(
                "the scoring fingerprint covers --dataset, --data-root, --batch-size, --repeat, --score-seed, --init and --ntk"
            )
        if stored["init"] != settings["init"] and settings["init"] == TEGConfig().init:
            differ.append(
                f"teg-plugin 0.2 changed the default --init to {settings['init']}: pass --init {stored['init']} "
                "to resume this study"
            )
        raise ValueError(
            f"{where} was searched with other settings: {'; '.join(differ)}. Resume it with the same settings, or "
            "choose another --study-name"
        )


def _uses_final_choice(args: argparse.Namespace) -> bool:
    """Whether the search's answer is its final choice (``--confirm-top`` and ``--confirm-seeds``)."""
    return bool(args.confirm_top and args.confirm_seeds)


def _summarise(study: Any, scorer: Any, args: argparse.Namespace, seconds: float, final: Any) -> dict[str, Any]:
    """The search's report (what ``run`` prints): the best architecture and its TEG values, counts,
    the final choice ``final`` (``None``: none was made) and, on NB201, the benchmark accuracy of the
    best architecture. Reads the study; writes nothing (:func:`_save_to_study` does)."""
    import optuna

    from teg_plugin.optuna import best_trial
    from teg_plugin.optuna._attrs import read_teg_attrs, rule_extra, stored_arch

    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=finished)
    best = best_trial(study, use_final_choice=_uses_final_choice(args))
    teg = read_teg_attrs(best.user_attrs)  # best_trial only picks trials that have them
    assert teg is not None
    arch_texts = {arch for t in trials if (arch := stored_arch(t.user_attrs))}
    summary: dict[str, Any] = {
        "best_arch": teg.arch,
        "index": teg.index,
        "ntk_cond": teg.ntk_cond,
        "regions": teg.regions,
        "kr_mse": teg.kr_mse,
        "bad": teg.bad,
        "best_trial": best.number,
        "n_trials": len(trials),
        "n_scored": len(arch_texts),
        "n_measured_here": scorer.n_measured,
        "seconds": round(seconds, 2),
        "strategy": args.strategy,
        "rule": str(args.rule),
        "study_name": study.study_name,
        "storage": args.storage,
        "data": scorer.data.source,
    }
    extra = rule_extra([best.user_attrs], args.rule)
    if extra is not None:  # the best architecture's values of the rule's params and proxies
        summary["rule_values"] = {term: (v if math.isfinite(v) else None) for term, v in extra[0].items()}
    summary.update(_benchmark_report(scorer, teg.arch))
    if final is not None:
        summary["n_measured_here"] += final.n_measured
        summary["final_choice"] = {
            "candidates": len(final.candidates),
            "seeds": list(final.seeds),
            "rule": str(final.rule),
            "search_rank_of_pick": final.pick.search_rank,
            "pick_before": final.candidates[0].text,
        }
    return summary


#: The report's benchmark values (NB201), also stored in the study (:func:`_save_to_study`).
_BENCHMARK_KEYS = ("benchmark_cifar10_valid", "benchmark_cifar10_test")


def _benchmark_report(scorer: Any, arch_text: str | None) -> dict[str, Any]:
    """NB201 only, after the search: the benchmark accuracy of the chosen arch, for the report."""
    if arch_text is None or scorer.space.name != "nas-bench-201":
        return {}
    from teg_plugin.benchmarks.nb201_accuracy import NB201Accuracy

    table = NB201Accuracy.load()
    valid_key, test_key = _BENCHMARK_KEYS
    return {valid_key: round(table.valid(arch_text), 4), test_key: round(table.test(arch_text), 4)}


def _save_to_study(study: Any, summary: dict[str, Any], *, use_final_choice: bool) -> None:
    """What the report leaves in the study: the best architecture's benchmark values (study user
    attributes, never read by the search) and the figures and note for optuna-dashboard."""
    from teg_plugin.optuna._attrs import best_benchmark_attr

    for key in _BENCHMARK_KEYS:
        if key in summary:
            study.set_user_attr(best_benchmark_attr(key), summary[key])
    _publish(study, use_final_choice=use_final_choice)


def _publish(study: Any, *, use_final_choice: bool) -> None:
    try:
        from teg_plugin.dashboard import publish_to_dashboard
    except ImportError:
        return
    try:
        publish_to_dashboard(study, use_final_choice=use_final_choice)
    except ImportError as err:
        print(f"teg-nas: note: figures not saved to the study ({err})", file=sys.stderr)


def _print_text(summary: dict[str, Any]) -> None:
    lines = [
        f"best architecture  {summary['best_arch']}",
        f"  NB201 index      {summary['index']}" if summary.get("index") is not None else None,
        f"  T  ntk_cond      {_num(summary['ntk_cond'])}   (lower is better)",
        f"  E  regions       {_num(summary['regions'])}   (higher is better)",
        f"  G  kr_mse        {_num(summary['kr_mse'])}   (lower is better)",
        _rule_line(summary),
        _final_choice_line(summary.get("final_choice")),
        (
            f"  NB201 CIFAR-10   valid {summary['benchmark_cifar10_valid']:.2f}%  test {summary['benchmark_cifar10_test']:.2f}%"
            "   (benchmark lookup, after the search)"
            if "benchmark_cifar10_test" in summary
            else None
        ),
        f"{summary['n_trials']} trials, {summary['n_scored']} distinct architectures, "
        f"{summary['n_measured_here']} measured in this run, {summary['seconds']:.1f} s",
        f"study '{summary['study_name']}' in {summary['storage']}",
        _dashboard_command(summary["storage"]),
    ]
    print("\n".join(line for line in lines if line is not None))


def _rule_line(summary: dict[str, Any]) -> str | None:
    """The rank rule, unless it is the paper's, with the best architecture's values of its extra terms."""
    if summary["rule"] == str(PAPER_RULE):
        return None
    values = ", ".join(f"{term} {_num(value)}" for term, value in summary.get("rule_values", {}).items())
    return f"  ranked by        {summary['rule']}" + (f"   ({values})" if values else "")


def _final_choice_line(final: dict[str, Any] | None) -> str | None:
    if final is None:
        return None
    seeds = len(final["seeds"])
    if final["search_rank_of_pick"] == 1:
        return f"  final choice     the search's best stayed first among its best {final['candidates']} over {seeds} score seeds"
    return (
        f"  final choice     rank {final['search_rank_of_pick']} of the search's best {final['candidates']}, first over "
        f"{seeds} score seeds (the search's own best: {final['pick_before']})"
    )


def _dashboard_command(storage: str) -> str | None:
    """How to open ``storage`` in optuna-dashboard (which takes a journal file by its path)."""
    import shlex

    journal = journal_path(storage)
    if journal is not None:
        return f"review it:  optuna-dashboard {shlex.quote(journal)}"
    if _in_memory(storage):
        return "the study was kept in memory and is gone now (--storage sqlite:///FILE.db keeps it)"
    return f"review it:  optuna-dashboard {shlex.quote(storage)}" if "://" in storage else None


def _in_memory(storage: str) -> bool:
    """Whether ``storage`` is an in-memory SQLite URL (``sqlite://``): one process's, lost at exit."""
    if journal_path(storage) is not None or not storage.strip().lower().startswith("sqlite"):
        return False
    try:
        return is_sqlite_memory(parse_database_url(storage, what="storage"))
    except ValueError:  # reported where the storage is opened
        return False


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.6g}"
