"""teg_plugin.plots and ``teg-nas plot``: figures of a small hand-made TEG study (no scoring, no torch
except where the pruning strategy and the CLI need the NB201 space)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from teg_plugin import plots
from teg_plugin.scores import TEGScore

# trial -> (ops per edge, NB201 index, kappa, regions, kr_mse); None values = bad. Trial 2 is the best on
# all three indicators; trial 7 re-evaluates trial 2's architecture; trial 3 is bad (pruned, as the TEG
# objective does). Trial 10 has no TEG attrs and trial 11 failed: both are left out.
TRIALS = [
    ((0, 1, 2, 3, 4, 0), 101, 1000.0, 300.0, 0.9),
    ((1, 1, 2, 2, 3, 3), 102, 500.0, 400.0, 0.8),
    ((3, 3, 3, 3, 3, 3), 103, 50.0, 900.0, 0.3),
    ((0, 0, 0, 0, 0, 0), 104, None, None, None),
    ((2, 2, 2, 2, 2, 2), 105, 200.0, 600.0, 0.5),
    ((3, 2, 3, 2, 3, 2), 106, 80.0, 700.0, 0.4),
    ((4, 4, 4, 4, 4, 4), 107, 3000.0, 100.0, 1.2),
    ((3, 3, 3, 3, 3, 3), 103, 50.0, 900.0, 0.3),
    ((3, 3, 2, 3, 3, 1), 108, 60.0, 800.0, 0.35),
    ((1, 3, 1, 3, 1, 3), None, 400.0, 500.0, 0.6),
]
BEST_TRIAL, BAD_TRIAL = 2, 3
ACCURACY = 93.1717  # stored as a user attr to check that nothing reads it


@pytest.fixture(scope="module")
def study_url(tmp_path_factory: pytest.TempPathFactory, make_teg_study, arch_text) -> str:
    """The TRIALS as a TEG study (each with an accuracy nothing may read), plus trial 10 (no TEG
    attrs) and 11 (failed)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plots') / 'teg.sqlite'}"
    study = make_teg_study(url, "teg-demo", TRIALS, cifar10_test=ACCURACY)
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    failed = {"arch": arch_text((3, 3, 3, 1, 1, 1)), "ntk_cond": 1.0, "regions": 5000.0, "kr_mse": 0.01, "bad": False}
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs=failed))
    return url


@pytest.fixture(scope="module")
def records(study_url: str) -> list[plots.TEGRecord]:
    return plots.records_from_study(optuna.load_study(study_name="teg-demo", storage=study_url))


def by_name(fig, name: str) -> list:
    return [t for t in fig.data if t.name == name]


def test_records_from_study_reads_the_teg_attrs_in_trial_order(records, arch_text):
    assert [r.order for r in records] == list(range(10))  # trial 10 has no TEG attrs, 11 failed
    assert records[0] == plots.TEGRecord(arch_text(TRIALS[0][0]), 1000.0, 300.0, 0.9, False, 101, 0, "COMPLETE")
    bad = records[BAD_TRIAL]
    assert bad.bad and bad.is_bad and bad.ntk_cond is None and bad.regions is None and bad.state == "PRUNED"
    assert records[9].index is None
    assert not hasattr(records[0], "cifar10_test")


def test_rank_records_ranks_distinct_archs_with_bad_last(records):
    ranked = plots.rank_records(records)
    assert {r.n_archs for r in ranked} == {9}  # trial 7 repeats trial 2
    assert ranked[BEST_TRIAL].rank == ranked[7].rank == 1 and ranked[BEST_TRIAL].rank_sum == 3.0
    assert ranked[BAD_TRIAL].rank == 9 and ranked[BAD_TRIAL].rank_sum == math.inf
    assert ranked[6].rank == 8  # worst of the good ones on every indicator
    assert plots.best_record(ranked).order == BEST_TRIAL


def test_best_record_prefers_a_complete_evaluation_and_the_first_of_equals():
    a = {"arch": "a", "ntk_cond": 1.0, "regions": 9.0, "kr_mse": 0.1}
    b = {"arch": "b", "ntk_cond": 5.0, "regions": 1.0, "kr_mse": 0.9, "state": "COMPLETE"}
    records = [
        plots.TEGRecord(**b, order=0),
        plots.TEGRecord(**a, order=1, state="RUNNING"),
        plots.TEGRecord(**a, order=2, state="COMPLETE"),
    ]
    assert plots.best_record(plots.rank_records(records)).order == 2
    assert plots.best_record(plots.rank_records(records[:2])).order == 1
    tie = [plots.TEGRecord("x", 1.0, 1.0, 1.0, order=0), plots.TEGRecord("y", 1.0, 1.0, 1.0, order=1)]
    assert plots.best_record(plots.rank_records(tie[::-1])).arch == "x"
    assert plots.best_record(plots.rank_records([plots.TEGRecord("z", None, 1.0, 1.0)])) is None


def test_as_records_accepts_dicts_scores_and_records():
    got = plots.as_records(
        [
            {"arch": "a", "ntk_cond": 2.0, "regions": 3, "kr_mse": 0.1, "order": 5},
            TEGScore(10.0, 1.0, 0.2),
            TEGScore.flagged("nan"),
            {"text": "b", "ntk_cond": float("nan"), "regions": None, "kr_mse": 1.0},
        ]
    )
    assert [(r.arch, r.order, r.is_bad) for r in got] == [
        ("a", 5, False),
        ("#1", 1, False),
        ("#2", 2, True),
        ("b", 3, True),
    ]
    assert got[3].ntk_cond is None
    assert plots.as_records(got) == got


def test_landscape_3d_traces(records, arch_text):
    fig = plots.teg_landscape(records)
    assert [t.name for t in fig.data] == ["trajectory", "architectures", "bad", "best"]
    assert all(t.type == "scatter3d" for t in fig.data)
    (line,), (points,), (bad,), (best,) = (by_name(fig, n) for n in ("trajectory", "architectures", "bad", "best"))
    # the trajectory visits every evaluation in trial order
    assert [c[0] for c in line.customdata] == list(range(10))
    good = [t for t in TRIALS if t[2] is not None]
    assert list(points.x) == pytest.approx([math.log10(t[2]) for t in good])
    assert list(line.x[:3]) == pytest.approx([3.0, math.log10(500.0), math.log10(50.0)])
    assert len(points.x) == 9 and list(points.marker.color) == [
        r.rank for r in plots.rank_records(records) if not r.is_bad
    ]
    assert points.marker.colorbar.title.text.startswith("TEG rank")
    # bad: one grey x, placed beyond the worst edge of each axis
    assert len(bad.x) == 1 and bad.marker.symbol == "x"
    assert bad.x[0] > max(points.x) and bad.y[0] < min(points.y) and bad.z[0] > max(points.z)
    assert line.x[BAD_TRIAL] == bad.x[0]
    # best: the arch of trial 2
    assert (best.x[0], best.y[0], best.z[0]) == pytest.approx((math.log10(50.0), 900.0, 0.3))
    assert best.customdata[0][0] == arch_text(TRIALS[BEST_TRIAL][0]) and best.customdata[0][2] == BEST_TRIAL
    assert "%{customdata[0]}" in best.hovertemplate
    assert str(ACCURACY) not in fig.to_json()


def test_landscape_without_trajectory_or_bad():
    fig = plots.teg_landscape([{"arch": "a", "ntk_cond": 10, "regions": 5, "kr_mse": 0.1}], trajectory=False)
    assert [t.name for t in fig.data] == ["architectures", "best"]


def test_landscape_2d_has_three_panels_with_the_trajectory(records):
    fig = plots.teg_landscape_2d(records)
    assert len(fig.data) == 12
    for axis, (a, b) in zip(("x", "x2", "x3"), ((0, 1), (0, 2), (1, 2))):
        panel = [t for t in fig.data if t.xaxis == axis]
        assert [t.name for t in panel] == ["trajectory", "architectures", "bad", "best"]
        line, _, _, best = panel
        assert len(line.x) == 10 and [c[0] for c in line.customdata] == list(range(10))
        assert best.marker.symbol == "star"
        star = (math.log10(50.0), 900.0, 0.3)
        assert (best.x[0], best.y[0]) == pytest.approx((star[a], star[b]))
    assert sum(1 for t in fig.data if t.showlegend is not False) == 4


def test_search_progress_best_so_far(records):
    fig = plots.search_progress(records)
    (best,) = by_name(fig, "best so far")
    ys = list(best.y)
    assert list(best.x) == list(range(10))
    assert ys == sorted(ys, reverse=True) and ys[BEST_TRIAL:] == [1] * 8 and ys[0] > 1
    (bad,) = by_name(fig, "bad")
    assert list(bad.x) == [BAD_TRIAL]
    (regions_best,) = by_name(fig, "best regions so far")
    assert max(regions_best.y) == 900.0


def test_pruning_rounds_marks_the_dropped_options():
    from teg_plugin.spaces import NB201Space
    from teg_plugin.strategies import PruningStrategy

    # "none" looks best, so it survives to the last round, where removing its partner would leave a
    # zero-only edge: that removal scores bad, is kept, and "none" is dropped instead.
    quality = {"none": 5.0, "nor_conv_3x3": 3.0, "nor_conv_1x1": 2.0, "avg_pool_3x3": 1.0, "skip_connect": 1.0}

    def score_mask(mask):
        if any(tuple(opts) == ("none",) for opts in mask.values()):
            return TEGScore.flagged("only zero ops left")
        q = sum(sum(quality.get(o, 0.0) for o in opts) / len(opts) for opts in mask.values())
        return TEGScore(ntk_cond=100.0 - q, regions=q, kr_mse=1.0 / (1.0 + q))

    strategy = PruningStrategy(NB201Space(), score_mask, exclude_options=())
    strategy.run()
    fig = plots.pruning_rounds(strategy)
    rounds = strategy.rounds
    bars, dropped = by_name(fig, "rank-sum"), by_name(fig, "dropped")
    assert len(bars) == len(dropped) == len(rounds)
    for rnd, bar, mark in zip(rounds, bars, dropped):
        assert len(bar.y) == len(rnd.candidates)
        assert sorted(zip(*mark.x)) == sorted(rnd.dropped.items())
        colors = [c for c, (ch, op) in zip(bar.marker.color, zip(*bar.x)) if rnd.dropped.get(ch) == op]
        assert set(colors) == {"crimson"} and len(colors) == len(rnd.dropped)
    broken = by_name(fig, "bad removal")  # removing the last non-zero op leaves only "none": kept
    assert broken
    for trace in broken:
        rnd = rounds[0 if trace.yaxis == "y" else int(trace.yaxis[1:]) - 1]
        assert all(rnd.dropped[choice] != option for choice, option in zip(*trace.x))
    assert set(rounds[-1].dropped.values()) == {"none"}
    with pytest.raises(ValueError, match="no pruning rounds"):
        plots.pruning_rounds([])


def test_plots_module_does_not_import_optuna():
    code = "import sys, teg_plugin.plots; assert 'optuna' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------- CLI


def test_cli_plot_writes_standalone_html(study_url, tmp_path, capsys):
    from teg_plugin.cli import main

    out = tmp_path / "figs"
    assert main(["plot", "--storage", study_url, "--study-name", "teg-demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [f"teg-demo_{i}.html" for i in plots.FIGURE_IDS]
    expected = {
        "teg-landscape": '"name":"best"',
        "teg-landscape-2d": '"symbol":"star"',
        "teg-search-progress": '"name":"best so far"',
    }
    for path, (graph_id, marker) in zip(map(Path, printed), expected.items()):
        text = path.read_text(encoding="utf-8")
        assert path.stat().st_size > 1_000_000  # plotly.js embedded: opens offline
        assert marker in text and '"name":"trajectory"' in text or graph_id == "teg-search-progress"
        assert '<script src="https://cdn.plot.ly' not in text


def test_cli_plot_errors(study_url, tmp_path, capsys):
    from teg_plugin.cli import main

    assert main(["plot", "--storage", study_url, "--study-name", "nope", "--out", str(tmp_path)]) == 2
    assert "no study 'nope'" in (err := capsys.readouterr().err) and "available: teg-demo" in err
    missing = tmp_path / "missing.sqlite"
    assert main(["plot", "--storage", f"sqlite:///{missing}", "--out", str(tmp_path)]) == 2
    assert "no such SQLite file" in capsys.readouterr().err and not missing.exists()
    assert main(["plot", "--storage", str(missing), "--out", str(tmp_path)]) == 2
    a_file = tmp_path / "figures.html"
    a_file.write_text("mine")
    assert main(["plot", "--storage", study_url, "--out", str(a_file)]) == 2
    assert f"--out {a_file} is a file; give a folder" in capsys.readouterr().err and a_file.read_text() == "mine"
    # two studies and no --study-name: asks to pick, naming both
    two = f"sqlite:///{tmp_path / 'two.sqlite'}"
    optuna.create_study(study_name="a", storage=two)
    optuna.create_study(study_name="b", storage=two)
    assert main(["plot", "--storage", two, "--out", str(tmp_path)]) == 2
    assert "--study-name: a, b" in capsys.readouterr().err
    # a study with no TEG trials
    assert main(["plot", "--storage", two, "--study-name", "a", "--out", str(tmp_path)]) == 2
    assert "no TEG trials" in capsys.readouterr().err
    try:
        import kaleido  # noqa: F401
    except ImportError:
        assert main(["plot", "--storage", study_url, "--format", "png", "--out", str(tmp_path)]) == 2
        assert "needs the kaleido package" in capsys.readouterr().err
