"""The ``teg-nas`` command line: score (json/csv/table, sampling, errors, cache) and bench."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable

import optuna
import pytest
import torch

from teg_plugin.cli import main
from teg_plugin.spaces.nb201 import NB201Space

FAST = ["--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet"]
KEYS = {"arch", "index", "ntk_cond", "regions", "kr_mse", "bad", "rank", "seconds"}
SPACE = NB201Space()


def _strict_json(text: str):
    """``json.loads`` that refuses NaN/Infinity (which json.dumps writes but is not JSON)."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _score_json(capsys, *argv: str) -> list[dict]:
    code, out, err = _run(capsys, "score", *argv, *FAST, "--format", "json")
    assert code == 0, err
    return _strict_json(out)


def test_score_index_json(capsys) -> None:
    rows = _score_json(capsys, "--index", "6111", "11472", "--no-cache")
    assert isinstance(rows, list) and len(rows) == 2
    for row, index in zip(rows, (6111, 11472)):
        assert KEYS <= set(row)
        assert row["index"] == index and row["arch"] == SPACE.format(SPACE.arch_at(index))
        assert row["bad"] is False and row["regions"] > 1 and row["ntk_cond"] > 1 and row["kr_mse"] > 0
        assert row["seconds"] > 0
    assert sorted(r["rank"] for r in rows) == [1, 2]


def test_score_csv_and_table(capsys) -> None:
    code, out, err = _run(capsys, "score", "--index", "6111", "11472", *FAST, "--no-cache", "--format", "csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "rank,rank_sum,index,ntk_cond,regions,kr_mse,bad,reason,seconds,arch"
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["index"]) for r in rows] == [6111, 11472] and {r["bad"] for r in rows} == {"False"}
    assert rows[0]["arch"] == SPACE.format(SPACE.arch_at(6111))

    code, out, err = _run(capsys, "score", "--index", "6111", "0", *FAST, "--no-cache", "--format", "table")
    assert code == 0, err
    lines = out.rstrip("\n").splitlines()
    assert len(lines) == 3
    assert lines[0].split() == [
        "rank",
        "rank_sum",
        "index",
        "ntk_cond",
        "regions",
        "kr_mse",
        "bad",
        "reason",
        "seconds",
        "arch",
    ]
    assert lines[1].split()[2] == "6111" and lines[1].split()[-1] == SPACE.format(SPACE.arch_at(6111))


def test_score_rule_ranks_by_a_proxy(capsys) -> None:
    """``--rule nwot``: rank and rank_sum follow nwot (computed, a column), not the TEG rank-sum."""
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # bad for TEG: ranked last whatever nwot says
    indices = ["6111", "11472", "1462", "13814", "2"]
    rows = _score_json(capsys, "--index", *indices, "--no-cache", "--rule", "nwot")
    rows += _score_json(capsys, "--arch", none, "--no-cache", "--rule", "nwot")
    assert all(row["nwot"] is not None for row in rows[:5]) and all(not row["bad"] for row in rows[:5])
    # ranked among the five good ones (the all-none cell was scored on its own)
    by_nwot = sorted(rows[:5], key=lambda row: -row["nwot"])
    assert [row["rank"] for row in by_nwot] == [1, 2, 3, 4, 5]
    assert [row["rank_sum"] for row in by_nwot] == [1.0, 2.0, 3.0, 4.0, 5.0]
    paper = _score_json(capsys, "--index", *indices, "--no-cache")
    assert [row["rank"] for row in paper] != [row["rank"] for row in rows[:5]]  # the rule changed the ranking
    assert "nwot" not in paper[0] and rows[5]["rank_sum"] is None and rows[5]["bad"] is True
    # a rule mixing the indicators, the complexity and a proxy; --proxies columns are kept beside it
    code, out, err = _run(
        capsys,
        "score",
        "--index",
        *indices[:3],
        *FAST,
        "--no-cache",
        "--format",
        "csv",
        "--proxies",
        "params",
        "--rule",
        "ntk_cond,regions,kr_mse,params=0.5,synflow=0.5",
    )
    assert code == 0, err
    header = out.splitlines()[0].split(",")
    assert header[header.index("kr_mse") + 1 : header.index("bad")] == ["params", "synflow"]
    with pytest.raises(SystemExit) as info:
        main(["score", "--index", "1", *FAST, "--no-cache", "--rule", "nwot,synflw"])
    err = capsys.readouterr().err
    assert (
        info.value.code == 2
        and "unknown term 'synflw' in a rank rule; known: ntk_cond, regions" in err
        and "zen" in err
    )


def test_score_bad_arch_is_valid_json_with_nulls(capsys) -> None:
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    rows = _score_json(
        capsys,
        "--arch",
        none,
        "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
        "--no-cache",
    )
    bad, good = rows
    assert bad["arch"] == none and bad["bad"] is True and bad["ntk_cond"] is None and bad["rank"] == 2
    assert good["bad"] is False and good["rank"] == 1


def test_score_sample_reproducible(capsys) -> None:
    first = _score_json(capsys, "--sample", "3", "--seed", "1", "--no-cache")
    second = _score_json(capsys, "--sample", "3", "--seed", "1", "--no-cache")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert len(first) == 3 and strip(first) == strip(second)
    other = _score_json(capsys, "--sample", "3", "--seed", "2", "--no-cache")
    assert [r["arch"] for r in other] != [r["arch"] for r in first]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--arch", "|nor_conv_3x3~0|+|nor_conv_3x3~0|"], "expected 3 node groups"),
        (["--arch", "|conv9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown op 'conv9x9'"),
        (["--index", "20000"], "out of range"),
        (["--arch", "Genotype(normal=[], normal_concat=[], reduce=[], reduce_concat=[])"], "add --space darts"),
        (["--sample", "0"], "must be an int in [1, 15625]"),
        (["--sample", "15626"], "must be an int in [1, 15625]"),
        (["--index", "1", "--dataset", "no-such-dataset"], "unknown dataset 'no-such-dataset'"),
    ],
)
def test_score_bad_input_one_line_exit_2(capsys, argv: list[str], needle: str) -> None:
    args = ["score", *argv, "--no-cache", "--quiet", "--batch-size", "8", "--repeat", "1"]
    if "--dataset" not in argv:
        args += ["--dataset", "synthetic"]
    code, out, err = _run(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("teg-nas: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_score_bad_cache_one_line_exit_2(capsys) -> None:
    code, out, err = _run(capsys, "score", "--index", "1", *FAST, "--cache", "foo://bar")
    assert code == 2 and out == ""
    assert err.startswith("teg-nas: error: unknown database in score cache URL 'foo://bar'") and err.count("\n") == 1


def test_score_sample_draws_different_archs(capsys) -> None:
    # Seed 945 draws NB201 index 7057 twice among its first three samples; --sample skips the repeat.
    rows = _score_json(capsys, "--sample", "3", "--seed", "945", "--no-cache")
    assert len({r["index"] for r in rows}) == 3


def test_score_bad_arch_reason_in_csv(capsys) -> None:
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    code, out, err = _run(capsys, "score", "--arch", none, *FAST, "--no-cache", "--format", "csv")
    assert code == 0, err
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["bad"] == "True" and row["reason"]


def test_score_seed_without_sample_is_a_usage_error(capsys) -> None:
    code, out, err = _run(capsys, "score", "--index", "1", "--seed", "3", *FAST)
    assert code == 2 and out == ""
    # One line, naming the subcommand whose help explains the flags.
    assert err.count("\n") == 1 and err.startswith("teg-nas score: error: ") and "--score-seed" in err


def test_closed_stdout_pipe_ends_quietly() -> None:
    # `teg-nas ... | head -c 0`: the reader is gone before the output is written; teg-nas stops quietly.
    command = f'{shlex.quote(sys.executable)} -m teg_plugin.cli score --index 1 2 3 {" ".join(FAST)} --no-cache --quiet --format json | head -c 0; echo "rc=${{PIPESTATUS[0]}}"'
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert (
        done.stdout.strip() == "rc=141" and "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
    ), done.stderr


def test_init_option_changes_the_weights_and_is_checked(capsys) -> None:
    default = _score_json(capsys, "--index", "6111", "--no-cache")[0]
    paper = _score_json(capsys, "--index", "6111", "--no-cache", "--init", "kaiming-normal")[0]
    assert paper["ntk_cond"] != default["ntk_cond"]
    assert (
        _score_json(capsys, "--index", "6111", "--no-cache", "--init", "torch-default")[0]["ntk_cond"]
        == default["ntk_cond"]
    )
    with pytest.raises(SystemExit) as info:
        main(["score", "--index", "1", "--init", "xavier"])
    assert info.value.code == 2 and "invalid choice: 'xavier'" in capsys.readouterr().err


def test_argparse_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["score", "--index", "1", "--format", "xml"])
    assert info.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["score", "--index", "1", "--arch", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    assert info.value.code == 2  # --arch, --index and --sample are mutually exclusive


@pytest.mark.parametrize(
    "command",
    [["search"], ["score", "--sample", "2"], ["bench", "correlation", "--truth", "t.csv"], ["bench", "speed"]],
)
@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5"])
def test_seeds_outside_what_optuna_and_numpy_take_are_refused_by_name(capsys, tmp_path, command, seed) -> None:
    storage = tmp_path / "never.db"
    with pytest.raises(SystemExit) as info:
        main(
            [
                *command,
                "--seed",
                seed,
                *FAST,
                "--no-cache",
                *(["--storage", f"sqlite:///{storage}"] if command == ["search"] else []),
            ]
        )
    assert info.value.code == 2
    assert f"argument --seed: must be an int from 0 to 4294967295, got '{seed}'" in capsys.readouterr().err
    assert not storage.exists()  # refused before anything is created


def test_score_cache_rerun_hits(capsys, tmp_path) -> None:
    path = str(tmp_path / "cli-cache.sqlite")
    first = _score_json(capsys, "--index", "6111", "11472", "--cache", path)
    second = _score_json(capsys, "--index", "6111", "11472", "--cache", path)
    assert all(r["seconds"] > 0 for r in first)
    assert all(r["seconds"] == 0 for r in second)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(first) == strip(second)


def test_module_entry_point_stdout_is_json_only(tmp_path) -> None:
    # No --dataset and no ./data: the CLI falls back to the embedded sample with a notice, and
    # shows a progress bar (no --quiet); both must go to stderr, leaving stdout pure JSON.
    env = {k: v for k, v in os.environ.items() if k not in ("TEG_DATA_ROOT", "TEG_CACHE")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "teg_plugin.cli",
            "score",
            "--index",
            "6111",
            "11472",
            "--format",
            "json",
            "--repeat",
            "1",
            "--batch-size",
            "8",
            "--no-cache",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = _strict_json(proc.stdout)
    assert [r["index"] for r in rows] == [6111, 11472] and all(KEYS <= set(r) for r in rows)
    assert "embedded" in proc.stderr  # the fallback notice
    assert "Traceback" not in proc.stderr


def test_bench_speed_json(capsys) -> None:
    code, out, err = _run(
        capsys,
        "bench",
        "speed",
        "--archs",
        "1",
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--dataset",
        "synthetic",
        "--no-cache",
        "--format",
        "json",
        "--quiet",
    )
    assert code == 0, err
    result = _strict_json(out)
    assert result["same_ranking"] is True and result["archs"] == 1
    assert result["speedup"] > 0 and len(result["fast_seconds"]) == len(result["plain_seconds"]) == 1
    assert result["max_relative_difference"] < 1e-5
    # What it ran on, beside the numbers (scores and timings depend on it).
    assert result["device"] == "cpu" and result["cpu"] and result["torch"] == torch.__version__
    assert isinstance(result["torch_threads"], int) and isinstance(result["onednn"], bool)


def test_bench_correlation_json(capsys, shared_data, tmp_path) -> None:
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    naslib = shared_data / "automl_NASLib" / "zc_nasbench201_725archs.csv"
    # A published-proxy table whose columns are constant/empty: their correlations are undefined.
    proxies = tmp_path / "proxies.csv"
    archs = [line.split(",")[2] for line in naslib.read_text().splitlines()[1:]]
    proxies.write_text("arch_str,naswot_v1_score_cifar10,zen_cifar10\n" + "".join(f"{a},1.0,\n" for a in archs))
    code, out, err = _run(
        capsys,
        "bench",
        "correlation",
        "--truth",
        str(truth),
        "--sample",
        "6",
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--dataset",
        "synthetic",
        "--no-cache",
        "--format",
        "json",
        "--naslib",
        str(naslib),
        "--proxies",
        str(proxies),
        "--quiet",
        "--rule",
        "ntk_cond,regions,kr_mse",
        "--rule",
        "regions,params=1",
    )
    assert code == 0, err
    result = _strict_json(out)  # undefined correlations are null, not NaN
    rows = {r["predictor"]: r for r in result["rows"]}
    # a rule row per --rule; the paper's rule gives the rank-sum's row again; params rows from the rule with a complexity term
    paper = rows["rule ntk_cond=1,regions=1,kr_mse=1 (neg)"]
    assert paper["kendall_tau"] == rows["TEG rank-sum (neg)"]["kendall_tau"]
    assert "rule regions=1,params=1 (neg)" in rows and rows["params (complexity)"]["n"] == 6
    # the complexity is the NB201 parameter count: ranked as the table's own params column
    assert rows["params (complexity)"]["kendall_tau"] == pytest.approx(rows["params_mb"]["kendall_tau"])
    for name in ("TEG rank-sum (neg)", "T: ntk_cond (neg)", "E: regions", "G: kr_mse (neg)", "nwot", "synflow"):
        assert name in rows, name
    assert rows["TEG rank-sum (neg)"]["n"] == 6 and rows["nwot"]["n"] == rows["synflow"]["n"] == 6
    for name in ("TEG rank-sum (neg)", "nwot", "synflow"):
        assert -1.0 <= rows[name]["kendall_tau"] <= 1.0 and -1.0 <= rows[name]["spearman_rho"] <= 1.0
    assert rows["naswot_v1_score_cifar10"]["kendall_tau"] is None  # constant predictor
    assert rows["zen_cifar10"]["n"] == 0 and rows["zen_cifar10"]["spearman_rho"] is None
    assert result["truth_column"] == "cifar10_test" and "synthetic" in result["data"]
    assert result["environment"]["cpu"] and result["environment"]["python"].startswith("3.")
    assert rows["nwot"]["kendall_tau_ci95"] == [None, None]  # 6 pairs: too few for an interval
    assert rows["naswot_v1_score_cifar10"]["kendall_tau_ci95"] == [None, None]
    # Top end (default: the top 10%, here 1 of 6): the ceiling is the sample's best accuracy.
    top = result["top"]
    assert top["fraction"] == 0.1 and top["count"] == 1
    assert top["sample_mean_accuracy"] < top["ceiling_accuracy"] <= 94.37
    for name in ("TEG rank-sum (neg)", "nwot", "synflow"):
        assert rows[name]["n_top"] == 1 and rows[name]["kendall_tau_top"] is None  # τ of one arch: undefined
        assert rows[name]["top_mean_accuracy"] <= top["ceiling_accuracy"]
    assert rows["zen_cifar10"]["top_mean_accuracy"] is None  # no predictions at all
    # A constant predictor's pick is a random tie-break: on average the sample's mean.
    assert rows["naswot_v1_score_cifar10"]["top_mean_accuracy"] == pytest.approx(top["sample_mean_accuracy"])


def test_bench_correlation_rules_with_proxies(capsys, shared_data) -> None:
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    code, out, err = _run(
        capsys,
        "bench",
        "correlation",
        "--truth",
        str(truth),
        "--sample",
        "6",
        *FAST,
        "--no-cache",
        "--format",
        "json",
        "--bootstrap",
        "0",
        "--rule",
        "nwot",
        "--rule",
        "regions,synflow=2",
        "--compute-proxies",
        "nwot",
    )
    assert code == 0, err
    rows = {r["predictor"]: r for r in _strict_json(out)["rows"]}
    assert rows["E: regions"]["n"] == rows["nwot (computed)"]["n"] == 6  # no bad score, no flagged nwot
    # nwot alone as a rule ranks as nwot itself; synflow is computed for its rule, without a row of its own
    assert rows["rule nwot=1 (neg)"]["kendall_tau"] == pytest.approx(rows["nwot (computed)"]["kendall_tau"])
    assert rows["rule nwot=1 (neg)"]["spearman_rho"] == pytest.approx(rows["nwot (computed)"]["spearman_rho"])
    assert rows["rule regions=1,synflow=2 (neg)"]["n"] == 6 and "synflow (computed)" not in rows


def _bench_search(capsys, shared_data, *argv: str) -> tuple[dict, str]:
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    code, out, err = _run(
        capsys,
        "bench",
        "search",
        "--truth",
        str(truth),
        "--budget",
        "3",
        *argv,
        *FAST,
        "--no-cache",
        "--format",
        "json",
    )
    assert code == 0, err
    return _strict_json(out), err


def test_bench_search_one_scorer_or_one_per_seed(capsys, shared_data) -> None:
    final = ("--confirm-top", "3", "--confirm-seeds", "1")
    shared, _ = _bench_search(
        capsys, shared_data, "--strategy", "evolution", "--seeds", "2", "--score-seed", "5", *final
    )
    varied, _ = _bench_search(
        capsys, shared_data, "--strategy", "evolution", "--seeds", "2", "--score-seed", "5", "--vary-score-seed", *final
    )
    assert [r["score_seed"] for r in shared["runs"]] == [5, 5] and shared["vary_score_seed"] is False
    assert [r["score_seed"] for r in varied["runs"]] == [5, 6] and varied["vary_score_seed"] is True
    # Seed 0 is the same run either way (same search seed, same score seed); seed 1 is scored anew.
    assert varied["runs"][0]["best_arch"] == shared["runs"][0]["best_arch"]
    for run in varied["runs"]:
        assert 0 < run["test_accuracy"] <= 100 and run["n_proposed"] == 3
        # The pick is one of the proposals, so the oracle among them is at least as good.
        assert run["test_accuracy"] <= run["best_proposed_test_accuracy"] <= 100
    assert (
        varied["best_proposed_cifar10_test_mean"] == sum(r["best_proposed_test_accuracy"] for r in varied["runs"]) / 2
    )
    # every other pick is one of the proposals too; the largest network of the space is the all-3x3 cell
    for run in varied["runs"]:
        for key in ("before_confirmation_test_accuracy", "random_pick_test_accuracy", "largest_proposed_test_accuracy"):
            assert 0 < run[key] <= run["best_proposed_test_accuracy"], key
        assert 1 <= run["n_confirmed"] <= 3
    largest = varied["largest_network_in_space"]
    assert (
        largest["arch"]
        == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert set(varied["picks_cifar10_test_mean"]) == {
        "test_accuracy",
        "before_confirmation_test_accuracy",
        "random_pick_test_accuracy",
        "largest_proposed_test_accuracy",
        "best_proposed_test_accuracy",
    }
    assert varied["environment"]["device"] == "cpu" and varied["environment"]["torch"] == torch.__version__


def test_bench_search_table_has_one_column_per_pick(capsys, shared_data) -> None:
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    code, out, err = _run(
        capsys,
        "bench",
        "search",
        "--truth",
        str(truth),
        "--budget",
        "3",
        "--seeds",
        "1",
        *FAST,
        "--no-cache",
        "--confirm-top",
        "2",
        "--confirm-seeds",
        "1",
    )
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("seed"))
    assert header.split()[2:7] == ["pick", "before_final", "random", "largest", "oracle"]
    assert "final choice: best 2 re-ranked over 1 further score seeds" in out and "largest in space: 93.76" in out


def test_bench_search_first_seed_and_search_rule(capsys, shared_data) -> None:
    result, _ = _bench_search(capsys, shared_data, "--seeds", "1", "--first-seed", "2", "--rule", "regions,params=0.5")
    assert [r["seed"] for r in result["runs"]] == [2] and result["search_rule"] == "regions=1,params=0.5"
    run = result["runs"][0]
    assert 0 < run["before_confirmation_valid_accuracy"] <= 100
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    code, _, err = _run(
        capsys, "bench", "search", "--truth", str(truth), "--strategy", "prune", "--rule", "regions", *FAST
    )
    assert code == 2 and "pruning ranks each removal by the paper's rule" in err and "Traceback" not in err


def test_bench_search_with_a_proxy_rule_picks_by_the_proxy(capsys, shared_data) -> None:
    """``--rule nwot``: the strategy ranks by nwot alone, computed by the scorer (no TEG rank)."""
    from teg_plugin.benchmarks.truth import read_truth
    from teg_plugin.config import TEGConfig
    from teg_plugin.scorer import TEGScorer
    from teg_plugin.scores import RankRule, best_distinct_index
    from teg_plugin.strategies import make_strategy

    rule = RankRule.parse("nwot")
    result, _ = _bench_search(
        capsys,
        shared_data,
        "--strategy",
        "random",
        "--seeds",
        "1",
        "--budget",
        "4",
        "--rule",
        "nwot",
        "--confirm-top",
        "2",
        "--confirm-seeds",
        "1",
    )
    assert result["search_rule"] == str(rule) == "nwot=1"
    run = result["runs"][0]
    # the same proposals and scores, by hand: the search's own pick is the best under the rule
    scorer = TEGScorer("nas-bench-201", "synthetic", TEGConfig.for_space(SPACE, batch_size=8, repeat=1), device="cpu")
    strategy = make_strategy("random", SPACE, seed=0)
    archs = []
    for _ in range(4):
        archs.append(strategy.ask())
        strategy.tell(archs[-1], scorer.score(archs[-1]))
    scores, nwot = scorer.score_many(archs), scorer.proxies(archs, ["nwot"])
    pick = archs[best_distinct_index(archs, scores, rule, nwot)]
    assert pick != archs[best_distinct_index(archs, scores)]  # the paper's rule would pick another here
    truth = shared_data / "nb201" / "nb201_ground_truth.csv"
    assert run["before_confirmation_test_accuracy"] == read_truth(truth, "cifar10_test")[SPACE.format(pick)]
    assert 1 <= run["n_confirmed"] <= 2


def test_bench_search_prune_warns_that_its_seeds_repeat(capsys, shared_data) -> None:
    result, err = _bench_search(capsys, shared_data, "--strategy", "prune", "--seeds", "2", "--budget", "1")
    assert "--vary-score-seed" in err
    assert result["runs"][0]["best_arch"] == result["runs"][1]["best_arch"]
    assert result["cifar10_test_std"] == 0.0


def test_search_prune_end_to_end(capsys, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'prune.db'}"
    cache = tmp_path / "scores.sqlite"
    argv = [
        "search",
        "--strategy",
        "prune",
        "--budget",
        "2",
        "--storage",
        storage,
        "--cache",
        str(cache),
        "--dataset",
        "synthetic",
        "--repeat",
        "2",
        "--batch-size",
        "8",
        "--format",
        "json",
    ]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    summary = _strict_json(out)
    found = SPACE.parse(summary["best_arch"])
    assert summary["n_trials"] == 2 and summary["study_name"] == "teg-nas-bench-201-prune-seed0"
    assert "supernet evaluations" in err and "57/57" in err  # TE-NAS's start: no `none`, 3 rounds
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    first = min(study.trials, key=lambda t: t.number)
    pruned = SPACE.parse(first.user_attrs["arch"])
    assert "none" not in pruned.ops  # the pruned architecture is the first trial
    assert found in {SPACE.parse(t.user_attrs["arch"]) for t in study.trials}
    # Every supernet is cached as a mean and per repeat.
    rows = sqlite3.connect(cache).execute("SELECT arch FROM teg_scores WHERE arch LIKE '%mean:%'").fetchall()
    assert len(rows) == 57 * 3


def test_search_by_a_rank_rule_with_a_proxy_end_to_end(capsys, tmp_path) -> None:
    from teg_plugin.optuna import best_trial
    from teg_plugin.optuna._attrs import RANK_RULE_ATTR, SEARCH_SETTINGS_ATTR
    from teg_plugin.scores import RankRule, TEGScore, best_distinct_index

    storage = f"sqlite:///{tmp_path / 'rule.db'}"
    base = ["search", "--storage", storage, *FAST, "--no-cache", "--budget", "6"]
    code, out, err = _run(capsys, *base, "--rule", "nwot,regions=0.5", "--format", "json")
    assert code == 0, err
    summary = _strict_json(out)
    assert summary["rule"] == "regions=0.5,nwot=1"
    assert summary["study_name"] == "teg-nas-bench-201-evolution-rule-regions=0.5,nwot=1-seed0"
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    assert study.user_attrs[RANK_RULE_ATTR] == "regions=0.5,nwot=1"
    assert study.user_attrs[SEARCH_SETTINGS_ATTR]["rule"] == "regions=0.5,nwot=1"
    complete = [t for t in sorted(study.trials, key=lambda t: t.number) if t.state.name == "COMPLETE"]
    assert all(isinstance(t.user_attrs["proxy_nwot"], float) for t in complete)
    # The answer: the best distinct architecture under the rule, from the stored values.
    archs = [t.user_attrs["arch"] for t in complete]
    scores = [TEGScore.from_dict(t.user_attrs) for t in complete]
    rule = RankRule.parse("nwot,regions=0.5")
    best = archs[best_distinct_index(archs, scores, rule, [{"nwot": t.user_attrs["proxy_nwot"]} for t in complete])]
    assert summary["best_arch"] == best == best_trial(study).user_attrs["arch"]
    assert summary["rule_values"] == {"nwot": complete[archs.index(best)].user_attrs["proxy_nwot"]}
    # The text report names the rule; resuming under another rule is refused; prune takes no rule.
    code, out, err = _run(capsys, *base, "--rule", "nwot,regions=0.5", "--budget", "7")
    assert code == 0, err
    assert "ranked by        regions=0.5,nwot=1   (nwot " in out and "7 trials" in out
    code, out, err = _run(capsys, *base, "--study-name", summary["study_name"], "--budget", "8")
    assert code == 2 and "rule 'regions=0.5,nwot=1' (now 'ntk_cond=1,regions=1,kr_mse=1')" in err
    code, out, err = _run(capsys, *base, "--strategy", "prune", "--rule", "nwot")
    assert code == 2 and "pruning ranks each removal by the paper's rule" in err


def test_search_resumes_only_a_study_made_with_the_same_settings(capsys, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'resume.db'}"
    base = ["search", "--storage", storage, *FAST, "--no-cache", "--format", "json"]
    code, out, err = _run(capsys, *base, "--budget", "2")
    assert code == 0, err
    name = _strict_json(out)["study_name"]
    code, out, err = _run(capsys, *base, "--budget", "3", "--space", "NB201")  # same settings (an alias): resumes
    assert code == 0, err
    assert _strict_json(out)["n_trials"] == 3 and _strict_json(out)["study_name"] == name
    for argv, needle in (
        (["--strategy", "random", "--study-name", name], "strategy 'evolution' (now 'random')"),
        (["--repeat", "2", "--study-name", name], "--repeat"),  # another protocol: another fingerprint
        (["--objective", "multi", "--study-name", name], "exists with 1 objective(s)"),
        (["--study-name", ""], "--study-name must not be empty"),
    ):
        code, out, err = _run(capsys, *base, "--budget", "4", *argv)
        assert code == 2 and out == "" and needle in err and err.count("\n") == 1, (argv, err)
    # A study of someone else's parameters is refused before any trial is added to it.
    foreign = optuna.create_study(study_name="foreign", storage=storage)
    foreign.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    code, out, err = _run(capsys, *base, "--budget", "2", "--study-name", "foreign")
    assert code == 2 and "not nas-bench-201 architectures searched by teg-nas" in err
    assert len(optuna.load_study(study_name="foreign", storage=storage).trials) == 1
    # --objective multi gets its own default study
    code, out, err = _run(capsys, *base, "--budget", "1", "--objective", "multi")
    assert code == 0, err
    assert _strict_json(out)["study_name"] == "teg-nas-bench-201-evolution-multi-seed0"


def test_search_and_plot_on_a_journal_file(capsys, tmp_path) -> None:
    journal = tmp_path / "study.log"
    code, out, err = _run(capsys, "search", "--storage", f"journal:{journal}", "--budget", "2", *FAST, "--no-cache")
    assert code == 0, err
    assert f"review it:  optuna-dashboard {journal}" in out  # optuna-dashboard opens a journal by its path
    code, out, err = _run(capsys, "plot", "--storage", f"journal:{journal}", "--out", str(tmp_path / "figs"))
    assert code == 0, err
    assert any(name.endswith("teg-landscape.html") for name in os.listdir(tmp_path / "figs"))
    code, out, err = _run(capsys, "plot", "--storage", f"journal:{tmp_path / 'missing.log'}")
    assert code == 2 and "no such journal file" in err


def test_ctrl_c_while_starting_is_one_line(capsys, monkeypatch) -> None:
    # Building the parser imports every subcommand (PyTorch, SciPy: seconds); Ctrl-C then was a traceback.
    from teg_plugin.cli import _main

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_main, "build_parser", interrupted)
    try:
        code, out, err = _run(capsys, "score", "--sample", "1")
    except KeyboardInterrupt:  # not raised on: it would stop the whole test session
        pytest.fail("KeyboardInterrupt escaped teg_plugin.cli.main")
    assert (code, out, err) == (130, "", "teg-nas: interrupted\n")


def test_ctrl_c_right_after_start_is_one_line() -> None:
    # The real thing: SIGINT half a second in, while Python still imports (`teg-nas score --help`
    # alone takes seconds), or later on a faster machine: either way one line and status 130.
    argv = [sys.executable, "-m", "teg_plugin.cli", "score", "--sample", "2", "--dataset", "synthetic", "--no-cache"]
    started = time.monotonic()
    assert _signalled(argv, signal.SIGINT, lambda: time.monotonic() - started >= 0.5) == (
        130,
        "",
        "teg-nas: interrupted\n",
    )


def _signalled(
    argv: list[str], signum: int, ready: Callable[[], bool], *, within_s: float = 180
) -> tuple[int, str, str]:
    """Start ``argv``, send it ``signum`` once ``ready()`` (polled) holds, and return its exit status,
    stdout and stderr. Fails if the process ends first or ``ready`` is not met within ``within_s``."""
    # The child starts with SIGINT handled, as from a terminal, even when this suite runs as a
    # background job (which starts with SIGINT ignored, and teg-nas keeps an ignored signal ignored).
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + within_s
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the command never got going"
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    return process.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_search_fails_its_trial_quietly_and_resumes(tmp_path, signum: int) -> None:
    """Ctrl-C, or SIGTERM from `kill`/`timeout`/a scheduler: one line, exit 130, and the running trial is
    failed (not left RUNNING for a resumed search to wait on). A journal storage, which has no heartbeat
    to fail a trial later, and which the test can watch without opening a database connection."""
    journal = tmp_path / "stop.log"
    storage = f"journal:{journal}"
    argv = [
        sys.executable,
        "-m",
        "teg_plugin.cli",
        "search",
        "--storage",
        storage,
        "--study-name",
        "stop",
        *FAST,
        "--no-cache",
        "--budget",
        "500",
    ]
    returncode, out, err = _signalled(
        argv,
        signum,
        lambda: journal.exists() and journal.read_text().count('"op_code"') >= 20,  # a few trials in
    )
    assert returncode == 130, err
    assert "Traceback" not in err and "failed with value" not in err, (
        err
    )  # Optuna logs no failure: it is an interruption
    assert err.strip().splitlines()[-1] == "teg-nas: interrupted", err
    from teg_plugin.optuna import create_storage

    study = optuna.load_study(study_name="stop", storage=create_storage(storage))
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    code = subprocess.run([*argv[:-1], str(len(states) + 1)], capture_output=True, text=True, timeout=300).returncode
    assert code == 0


def test_an_in_memory_storage_is_refused_for_workers_and_not_offered_to_the_dashboard(capsys) -> None:
    code, out, err = _run(
        capsys, "search", "--storage", "sqlite://", "--workers", "2", "--budget", "2", *FAST, "--no-cache"
    )
    assert code == 2 and out == "" and "in-memory database of one process" in err
    code, out, err = _run(capsys, "search", "--storage", "sqlite://", "--budget", "1", *FAST, "--no-cache")
    assert code == 0, err
    assert "kept in memory and is gone" in out and "optuna-dashboard" not in out


def test_bench_tables_that_cannot_serve_are_refused_before_any_search(capsys, tmp_path) -> None:
    partial = tmp_path / "partial.csv"
    partial.write_text("arch_str,cifar10_test,cifar10_valid\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10,10\n")
    code, out, err = _run(
        capsys, "bench", "search", "--truth", str(partial), "--seeds", "1", "--budget", "1", *FAST, "--no-cache"
    )
    assert code == 2 and "lacks 15624 nas-bench-201 architectures" in err
    latin = tmp_path / "latin.csv"
    latin.write_bytes("arch_str,cifar10_test\nré,1\n".encode("latin-1"))
    code, out, err = _run(capsys, "bench", "correlation", "--truth", str(latin), "--sample", "2", *FAST, "--no-cache")
    assert code == 2 and f"{latin} is not a UTF-8 CSV table" in err
    code, out, err = _run(
        capsys, "bench", "correlation", "--truth", str(latin), "--bootstrap", "-5", *FAST, "--no-cache"
    )
    assert code == 2 and "--bootstrap must be 0" in err
    code, out, err = _run(capsys, "bench", "correlation", "--truth", str(latin), "--top", "1.5", *FAST, "--no-cache")
    assert code == 2 and "--top must be a fraction in (0, 1], got 1.5" in err
    truth = tmp_path / "truth.csv"
    truth.write_text("arch_str,cifar10_test\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,10\n")
    swapped = tmp_path / "swapped.csv"  # a proxy table of the other kind
    swapped.write_text("arch_str,naswot_v1_score_cifar10\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n")
    code, out, err = _run(
        capsys, "bench", "correlation", "--truth", str(truth), "--naslib", str(swapped), *FAST, "--no-cache"
    )
    assert code == 2 and f"NAS-Bench-Suite-Zero proxy table {swapped} holds none of the columns nwot, synflow" in err
    code, out, err = _run(
        capsys,
        "bench",
        "correlation",
        "--truth",
        str(truth),
        "--proxies",
        str(tmp_path / "nope.csv"),
        *FAST,
        "--no-cache",
    )
    assert code == 2 and f"published-proxy table not found: {tmp_path / 'nope.csv'}" in err
