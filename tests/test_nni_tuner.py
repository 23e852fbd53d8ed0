"""TEGTuner, the nnictl (HPO) tuner, unit-tested directly (no NNI manager)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')

from teg_plugin.nni import TEGTuner  # noqa: E402, I001
from teg_plugin.nni.metrics import proxy_metrics, teg_metrics  # noqa: E402

import nni  # noqa: E402

from teg_plugin.scores import RankRule, TEGScore  # noqa: E402
from teg_plugin.spaces import NB201Space  # noqa: E402
from teg_plugin.strategies import make_strategy  # noqa: E402

SEARCH_SPACE = json.loads(
    (Path(__file__).resolve().parents[1] / "examples" / "nnictl" / "search_space.json").read_text()
)
SPACE = NB201Space()


def fake_score(arch: object) -> TEGScore:
    """Deterministic indicators that favour nor_conv_3x3 (not measured: the tuner only reads numbers)."""
    ops = SPACE.to_params(arch).values()  # type: ignore[arg-type]
    n3 = sum(op == "nor_conv_3x3" for op in ops)
    n0 = sum(op == "none" for op in ops)
    return TEGScore(ntk_cond=100.0 - 10 * n3 + n0, regions=10.0 + 5 * n3 - n0, kr_mse=1.0 / (1 + n3))


def test_search_space_file_is_one_choice_per_edge() -> None:
    assert {name: entry["_value"] for name, entry in SEARCH_SPACE.items()} == {
        name: list(options) for name, options in SPACE.choices().items()
    }
    assert all(entry["_type"] == "choice" for entry in SEARCH_SPACE.values())


def test_bad_class_args_fail_when_the_tuner_is_built() -> None:
    # nnictl builds the tuner from classArgs: an error here sets the experiment to ERROR, whereas one
    # raised later (update_search_space) left it RUNNING without trials.
    with pytest.raises(TypeError, match="no option 'populaton_size'; its options: population_size, tournament_size"):
        TEGTuner("evolution", populaton_size=2)
    with pytest.raises(ValueError, match="tournament_size"):
        TEGTuner("evolution", population_size=2, tournament_size=5)


def test_update_search_space_checks_the_space() -> None:
    tuner = TEGTuner("random")
    with pytest.raises(RuntimeError, match="update_search_space"):
        tuner.generate_parameters(0)
    with pytest.raises(ValueError, match="3<-2"):
        tuner.update_search_space({k: v for k, v in SEARCH_SPACE.items() if k != "3<-2"})
    with pytest.raises(ValueError, match="lr"):
        tuner.update_search_space({**SEARCH_SPACE, "lr": {"_type": "uniform", "_value": [0, 1]}})
    with pytest.raises(ValueError, match="choose among"):
        tuner.update_search_space({**SEARCH_SPACE, "1<-0": {"_type": "choice", "_value": ["none"]}})
    tuner.update_search_space(SEARCH_SPACE)
    assert set(tuner.generate_parameters(0)) == set(SEARCH_SPACE)
    with pytest.raises(ValueError, match="prune"):
        TEGTuner("prune")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("random", {}),
        ("evolution", {"population_size": 4, "tournament_size": 2}),
        ("reinforce", {"learning_rate": 0.1}),
    ],
)
def test_tuner_runs_the_algorithm_unchanged(name: str, options: dict) -> None:
    budget = 8
    tuner = TEGTuner(name, seed=5, budget=budget, **options)
    tuner.update_search_space(SEARCH_SPACE)
    direct = make_strategy(name, SPACE, seed=5, **options)
    for parameter_id in range(budget):
        params = tuner.generate_parameters(parameter_id)
        arch = direct.ask()
        assert SPACE.from_params(params) == arch
        score = fake_score(arch)
        direct.tell(arch, score)
        # What a trial reports (NNI delivers the dict; export holds it as a JSON string).
        value = teg_metrics(score, -1.0) if parameter_id % 2 else json.dumps(teg_metrics(score, -1.0))
        tuner.receive_trial_result(parameter_id, params, value)
        tuner.trial_end(parameter_id, True)  # a result came: nothing more is told
    assert len(tuner.results) == budget
    with pytest.raises(nni.NoMoreTrialError):
        tuner.generate_parameters(budget)
    assert tuner.best() == direct.best()


def fake_nwot(arch: object) -> float:
    """A pseudo-proxy that favours avg_pool_3x3, against fake_score's preference."""
    return float(sum(op == "avg_pool_3x3" for op in SPACE.to_params(arch).values()))  # type: ignore[arg-type]


def test_a_rule_ranks_by_the_proxies_the_trials_report(caplog: pytest.LogCaptureFixture) -> None:
    budget, options = 12, {"population_size": 4, "tournament_size": 2}
    tuner = TEGTuner("evolution", seed=3, budget=budget, rule="nwot", **options)
    tuner.update_search_space(SEARCH_SPACE)
    direct = make_strategy(
        "evolution",
        SPACE,
        seed=3,
        rule=RankRule.parse("nwot"),
        proxy_values=lambda a: {"nwot": fake_nwot(a)},
        **options,
    )
    for parameter_id in range(budget):
        params = tuner.generate_parameters(parameter_id)
        arch = direct.ask()
        assert SPACE.from_params(params) == arch
        direct.tell(arch, fake_score(arch))
        value = {**teg_metrics(fake_score(arch), -1.0), **proxy_metrics({"nwot": fake_nwot(arch)})}
        tuner.receive_trial_result(parameter_id, params, json.dumps(value) if parameter_id % 2 else value)
    assert tuner.best() == direct.best()
    assert fake_nwot(tuner.best()) == max(fake_nwot(arch) for arch, score in tuner.results if not score.bad)
    # A trial that does not report the proxy: undefined, with one warning naming the fix.
    tuner = TEGTuner("random", seed=0, rule="nwot")
    tuner.update_search_space(SEARCH_SPACE)
    for parameter_id in range(2):
        params = tuner.generate_parameters(parameter_id)
        tuner.receive_trial_result(parameter_id, params, teg_metrics(fake_score(SPACE.from_params(params)), -1.0))
    assert caplog.text.count("has no proxy_nwot") == 1 and "trial.py --proxies nwot" in caplog.text
    assert tuner.best() == tuner.results[0][0]  # both undefined: the first told wins
    with pytest.raises(TypeError, match="pass the rank rule as rule="):
        TEGTuner("random", proxy_values=fake_nwot)


def test_results_without_teg_and_failed_trials_count_as_bad() -> None:
    tuner = TEGTuner("evolution", seed=0, population_size=2, tournament_size=1)
    tuner.update_search_space(SEARCH_SPACE)
    first = tuner.generate_parameters(1)
    tuner.receive_trial_result(1, first, 0.93)  # a bare accuracy: no T/E/G
    second = tuner.generate_parameters(2)
    tuner.trial_end(2, False)  # crashed before reporting
    results = tuner.results
    assert [SPACE.to_params(arch) for arch, _ in results] == [first, second]
    assert all(score.bad for _, score in results)


def test_concurrent_trials_and_import_data() -> None:
    tuner = TEGTuner("reinforce", seed=1, budget=4)
    tuner.update_search_space(SEARCH_SPACE)
    params = [tuner.generate_parameters(i) for i in range(3)]  # three trials run at once
    assert tuner._generated == 3
    for i in (2, 0, 1):  # results in any order
        arch = SPACE.from_params(params[i])
        tuner.receive_trial_result(i, params[i], teg_metrics(fake_score(arch), -2.0))
    tuner.generate_parameters(3)
    with pytest.raises(nni.NoMoreTrialError):
        tuner.generate_parameters(4)

    resumed = TEGTuner("reinforce", seed=1)
    resumed.update_search_space(SEARCH_SPACE)
    resumed.import_data(
        [
            {"parameter": params[i], "value": json.dumps(teg_metrics(fake_score(SPACE.from_params(params[i])), -2.0))}
            for i in range(3)
        ]
        + [{"parameter": {"1<-0": "none"}, "value": "{}"}]  # unusable: skipped
    )
    assert [arch for arch, _ in resumed.results] == [SPACE.from_params(p) for p in params]


def test_result_is_told_for_the_generated_arch_whatever_the_parameters(caplog: pytest.LogCaptureFixture) -> None:
    tuner = TEGTuner("random", seed=0)
    tuner.update_search_space(SEARCH_SPACE)
    params = tuner.generate_parameters(0)
    arch = SPACE.from_params(params)
    caplog.set_level("WARNING", logger="teg_plugin.nni._tuner")
    incomplete = {k: v for k, v in params.items() if k != "1<-0"}
    tuner.receive_trial_result(0, incomplete, teg_metrics(fake_score(arch), -1.0))  # was KeyError: '1<-0'
    assert "1<-0" in caplog.text
    tuner.trial_end(0, True)  # the result was told: nothing more
    assert tuner.results == [(arch, fake_score(arch))]

    other = tuner.generate_parameters(1)
    wrong = {**other, "1<-0": "none" if other["1<-0"] != "none" else "skip_connect"}
    caplog.clear()
    tuner.receive_trial_result(1, wrong, teg_metrics(fake_score(SPACE.from_params(other)), -1.0))
    assert "do not match" in caplog.text
    assert [a for a, _ in tuner.results] == [arch, SPACE.from_params(other)]


def test_odd_results_and_trial_ends_are_logged_and_told_once(caplog: pytest.LogCaptureFixture) -> None:
    tuner = TEGTuner("evolution", seed=0, population_size=2, tournament_size=1)
    tuner.update_search_space(SEARCH_SPACE)
    caplog.set_level("WARNING", logger="teg_plugin.nni._tuner")
    p0, p1 = tuner.generate_parameters(0), tuner.generate_parameters(1)
    a0, a1 = SPACE.from_params(p0), SPACE.from_params(p1)

    tuner.receive_trial_result(0, p0, [1, 2])  # not a TEG dict: bad, with the reason
    assert tuner.results[-1][1].bad and "no TEG result" in tuner.results[-1][1].reason
    tuner.receive_trial_result(0, p0, teg_metrics(fake_score(a0), -1.0))  # repeated: ignored
    assert "already has a result" in caplog.text and len(tuner.results) == 1

    tuner.trial_end(1, True)  # NNI may end a trial before its metric arrives: bad for now
    tuner.trial_end(1, True)
    assert "repeated" in caplog.text and len(tuner.results) == 2
    caplog.clear()
    tuner.receive_trial_result(1, p1, teg_metrics(fake_score(a1), -1.0))  # the late result is not lost
    assert "after trial_end" in caplog.text and tuner.results[-1] == (a1, fake_score(a1))

    caplog.clear()
    tuner.trial_end(77, False)  # never generated
    assert "77" in caplog.text and len(tuner.results) == 3
    tuner.receive_trial_result(78, {"1<-0": "none"}, teg_metrics(fake_score(a0), -1.0))  # was KeyError
    assert "78" in caplog.text and len(tuner.results) == 3
    tuner.receive_trial_result(79, p0, teg_metrics(fake_score(a0), -1.0))  # valid arch: told, with a warning
    assert "79" in caplog.text and tuner.results[-1] == (a0, fake_score(a0))
    assert tuner._told == {0: "result", 1: "result", 79: "result"}


def test_import_data_and_update_search_space_check_their_input(caplog: pytest.LogCaptureFixture) -> None:
    tuner = TEGTuner("random", seed=0)
    with pytest.raises(TypeError, match="dict"):
        tuner.update_search_space([1, 2])  # type: ignore[arg-type]
    tuner.update_search_space(SEARCH_SPACE)
    params = tuner.generate_parameters(0)
    arch = SPACE.from_params(params)
    with pytest.raises(ValueError, match="'1<-0' must list its options"):
        tuner.update_search_space({**SEARCH_SPACE, "1<-0": {"_type": "choice", "_value": 5}})
    assert tuner._archs == {0: arch}  # a refused space changes nothing

    for data in ("x", None, {"parameter": params, "value": 1}):
        with pytest.raises(TypeError, match="list of"):
            tuner.import_data(data)  # type: ignore[arg-type]
    caplog.set_level("WARNING", logger="teg_plugin.nni._tuner")
    good = {"parameter": params, "value": teg_metrics(fake_score(arch), -1.0)}
    tuner.import_data([1, "x", {"parameter": [1], "value": good["value"]}, {"value": good["value"]}, good])
    assert tuner.results == [(arch, fake_score(arch))]
    assert all(f"record {i} skipped" in caplog.text for i in range(4))


def test_search_space_of_a_user_space_with_options_of_mixed_types() -> None:
    # A ChoiceSpace's options may be int or None: the check compared them with str() of NNI's values
    # (never equal to an int) and sorted them (TypeError between None and str).
    from torch import nn

    from teg_plugin.spaces import ChoiceSpace

    space = ChoiceSpace("mixed", {"width": [4, 8], "act": ["relu", None]}, lambda c: nn.Linear(3, c["width"]))
    tuner = TEGTuner("random", seed=0, space=space)
    search_space = {
        "width": {"_type": "choice", "_value": [8, 4]},
        "act": {"_type": "choice", "_value": [None, "relu"]},
    }
    tuner.update_search_space(search_space)
    arch = space.from_params(tuner.generate_parameters(0))
    assert arch["width"] in (4, 8) and arch["act"] in ("relu", None)
    for name, wrong in (("width", ["8", "4"]), ("act", ["relu", "None"]), ("width", [8, True])):
        with pytest.raises(ValueError, match=f"{name!r} must choose among"):
            tuner.update_search_space({**search_space, name: {"_type": "choice", "_value": wrong}})


def test_constructor_refuses_non_integer_and_mistyped_args() -> None:
    for bad in (2.7, True, "3"):
        with pytest.raises(TypeError, match="TEGTuner budget must be an int, got"):
            TEGTuner(budget=bad)
    with pytest.raises(ValueError, match="TEGTuner budget must be >= 1, got 0"):
        TEGTuner(budget=0)
    for bad in (1.5, None, False):
        with pytest.raises(TypeError, match="TEGTuner seed must be an int, got"):
            TEGTuner(seed=bad)
    with pytest.raises(TypeError, match="strategy name must be a str"):
        TEGTuner(strategy=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="space must be"):
        TEGTuner(space=5)  # type: ignore[arg-type]
    np = pytest.importorskip("numpy")
    tuner = TEGTuner(seed=np.int64(4), budget=np.int32(3))
    assert (tuner.seed, tuner.budget) == (4, 3) and type(tuner.budget) is int
