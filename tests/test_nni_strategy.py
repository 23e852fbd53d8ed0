"""TEG strategies as NNI 3.0 strategies, end to end in NNI's sequential engine (in process, on CPU)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import (  # noqa: E402, I001
    NB201ModelSpace,
    TEGEvaluator,
    TEGEvolution,
    TEGRandom,
    TEGReinforce,
    TEGStrategy,
    arch_from_sample,
    sample_from_arch,
)

import nni  # noqa: E402
import nni.experiment.experiment  # noqa: E402
import nni.nas.experiment.experiment  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace  # noqa: E402
from nni.tools.nnictl.config_utils import Experiments  # noqa: E402

from teg_plugin.scores import best_distinct_index, distinct_order  # noqa: E402
from teg_plugin.spaces import NB201Space  # noqa: E402
from teg_plugin.strategies import make_strategy  # noqa: E402

SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}
SPACE = NB201Space()
BUDGET = 5


@pytest.fixture(scope="module")
def evaluator() -> TEGEvaluator:
    return TEGEvaluator(data="synthetic", config=SMALL, device="cpu")


def _run(strategy: TEGStrategy, evaluator: TEGEvaluator, home: Path) -> tuple[NasExperiment, list[Any]]:
    config = NasExperimentConfig("sequential", "simplified")
    config.experiment_working_directory = str(home)
    experiment = NasExperiment(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, strategy, config)
    try:
        experiment.run()
        top = experiment.export_top_models(top_k=BUDGET, formatter="dict")
    finally:
        experiment.stop()
    return experiment, top


def _direct_run(name: str, evaluator: TEGEvaluator, **options: Any) -> list[Any]:
    """The same algorithm driven directly (ask, score, tell), as teg-nas itself runs it."""
    algorithm = make_strategy(name, SPACE, seed=7, **options)
    asked = []
    for _ in range(BUDGET):
        arch = algorithm.ask()
        algorithm.tell(arch, evaluator.scorer.score(arch))
        asked.append(arch)
    return asked


STRATEGIES = {
    "random": (lambda: TEGRandom(seed=7, budget=BUDGET), {}),
    "evolution": (
        lambda: TEGEvolution(seed=7, budget=BUDGET, population_size=3, tournament_size=2),
        {"population_size": 3, "tournament_size": 2},
    ),
    "reinforce": (lambda: TEGReinforce(seed=7, budget=BUDGET, learning_rate=0.1), {"learning_rate": 0.1}),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_end_to_end(name: str, evaluator: TEGEvaluator, nni_home: Path) -> None:
    make, options = STRATEGIES[name]
    strategy = make()
    experiment, top = _run(strategy, evaluator, nni_home)

    results = strategy.results
    assert len(results) == BUDGET
    # The NNI strategy runs the algorithm unchanged: same proposals as a direct ask/score/tell loop.
    assert [arch for arch, _ in results] == _direct_run(name, evaluator, **options)
    # Each told score is the evaluator's T/E/G for that architecture.
    for arch, score in results:
        expected = evaluator.scorer.score(arch)
        assert (score.ntk_cond, score.regions, score.kr_mse, score.bad) == (
            expected.ntk_cond,
            expected.regions,
            expected.kr_mse,
            expected.bad,
        )

    # export_top_models: each architecture once, ranked among the distinct ones, best first.
    archs, scores = [arch for arch, _ in results], [score for _, score in results]
    assert arch_from_sample(top[0]) == archs[best_distinct_index(archs, scores)] == strategy.best()
    top_archs = [arch_from_sample(sample) for sample in top]
    assert top_archs == [archs[i] for i in distinct_order(archs, scores)]
    # Every model was submitted to and trained by NNI's engine.
    models = list(strategy.list_models(sort=False))
    assert len(models) == BUDGET
    assert all(model.metric is not None for model in models)


def test_final_choice_reranks_the_best_candidates_and_leads_the_export(evaluator: TEGEvaluator, nni_home: Path) -> None:
    from teg_plugin.confirm import FinalChoice, confirm, top_candidates

    strategy = TEGEvolution(
        seed=7, budget=BUDGET, population_size=3, tournament_size=2, final_choice=FinalChoice(top=3, seeds=1)
    )
    _, top = _run(strategy, evaluator, nni_home)
    archs, scores = [a for a, _ in strategy.results], [s for _, s in strategy.results]
    candidates = top_candidates(SPACE, archs, scores, 3)
    expected = confirm(evaluator.scorer, candidates, seeds=1)  # the evaluator's scorer, as the strategy used
    assert strategy.final is not None and strategy.final.pick.text == expected.pick.text
    assert [c.text for c in strategy.final.candidates] == [SPACE.format(a) for a in candidates]
    assert SPACE.format(arch_from_sample(top[0])) == expected.pick.text == SPACE.format(strategy.best())
    with pytest.raises(TypeError, match="FinalChoice"):
        TEGEvolution(final_choice=(3, 1))  # type: ignore[arg-type]


def test_state_dict_round_trip(evaluator: TEGEvaluator, nni_home: Path) -> None:
    strategy = TEGEvolution(seed=3, budget=4, population_size=2, tournament_size=2)
    _run(strategy, evaluator, nni_home)
    state = strategy.state_dict()
    restored = TEGEvolution(seed=3, budget=4, population_size=2, tournament_size=2)
    restored.load_state_dict(state)
    assert restored.results == strategy.results
    assert restored.algorithm.ask() == strategy.algorithm.ask()


def test_a_proxy_rule_ranks_by_the_proxies_of_the_evaluators_scorer(nni_home: Path) -> None:
    from teg_plugin.scores import RankRule

    evaluator = TEGEvaluator(data="synthetic", config=SMALL, device="cpu", proxies="nwot")
    strategy = TEGEvolution(seed=7, budget=BUDGET, population_size=3, tournament_size=2, rule="nwot")
    assert strategy.rule == RankRule.parse("nwot") and "rule='nwot=1'" in repr(strategy)
    _, top = _run(strategy, evaluator, nni_home)
    archs, scores = [a for a, _ in strategy.results], [s for _, s in strategy.results]
    nwot = evaluator.scorer.proxies(archs, ["nwot"])  # cached: what the strategy got
    # the proposals are those of the algorithm run directly with the same rule and proxies
    direct = make_strategy(
        "evolution",
        SPACE,
        seed=7,
        population_size=3,
        tournament_size=2,
        rule=strategy.rule,
        proxy_values=lambda arch: evaluator.scorer.proxies([arch], ["nwot"])[0],
    )
    for arch, score in strategy.results:
        assert direct.ask() == arch
        direct.tell(arch, score)
    order = distinct_order(archs, scores, strategy.rule, nwot)
    assert [arch_from_sample(sample) for sample in top] == [archs[i] for i in order if not scores[i].bad]
    good = [i for i in range(len(archs)) if not scores[i].bad]
    assert strategy.best() == archs[order[0]] and nwot[order[0]]["nwot"] == max(nwot[i]["nwot"] for i in good)


def test_a_proxy_rule_needs_a_teg_scorer_when_the_experiment_starts() -> None:
    from nni.nas.space import SimplifiedModelSpace

    with pytest.raises(ValueError, match="unknown term 'nwt'"):
        TEGRandom(rule="nwt")
    with pytest.raises(TypeError, match="rule must be a teg_plugin.scores.RankRule"):
        TEGRandom(rule=["nwot"])  # type: ignore[arg-type]
    anything = TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu")
    model_space = SimplifiedModelSpace.from_model(NB201ModelSpace(width=2, cells_per_stage=1), anything)
    with pytest.raises(
        ValueError, match="rank rule nwot=1 names the proxies nwot, which need a TEGScorer of nas-bench-201"
    ):
        TEGRandom(budget=1, rule="nwot").initialize(model_space, _NoEngine())


class _OtherSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.add_mutable(nni.choice("depth", [1, 2]))

    def freeze(self, sample: dict) -> Any:  # pragma: no cover - never reached
        raise AssertionError


def test_rejects_a_model_space_with_other_labels(evaluator: TEGEvaluator, nni_home: Path) -> None:
    from nni.nas.space import SimplifiedModelSpace

    strategy = TEGRandom(budget=1)
    with pytest.raises(ValueError, match="NB201ModelSpace"):
        strategy.initialize(SimplifiedModelSpace.from_model(_OtherSpace(), evaluator), _NoEngine())


class _NoEngine:
    def register_model_event_callback(self, *args: Any) -> None:  # pragma: no cover - never reached
        raise AssertionError


def test_warns_when_nothing_bounds_the_run(caplog: pytest.LogCaptureFixture) -> None:
    from nni.nas.execution import SequentialExecutionEngine

    model_space = NB201ModelSpace(width=2, cells_per_stage=1)
    cases = [
        (TEGRandom(), SequentialExecutionEngine(), True),
        (TEGRandom(budget=3), SequentialExecutionEngine(), False),
        (TEGRandom(), SequentialExecutionEngine(max_model_count=3), False),
        (TEGRandom(), SequentialExecutionEngine(max_duration=60.0), False),
    ]
    for strategy, engine, warns in cases:
        caplog.clear()
        with caplog.at_level("WARNING", logger="teg_plugin.nni._strategy"):
            strategy._initialize(model_space, engine)
        assert ("runs until it is stopped" in caplog.text) is warns, (strategy.budget, engine.max_model_count)


def test_unknown_strategy_name_and_bad_numbers() -> None:
    with pytest.raises(ValueError, match="prune"):
        TEGStrategy("prune")
    with pytest.raises(ValueError, match="budget must be >= 1, got 0"):
        TEGStrategy("random", budget=0)
    with pytest.raises(TypeError, match="budget must be an int, got '5'"):
        TEGStrategy("random", budget="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an int, got 1.7"):
        TEGStrategy("random", seed=1.7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="strategy name must be a str, one of random, evolution, reinforce; got 5"):
        TEGStrategy(5)  # type: ignore[arg-type]


def test_best_refuses_when_every_result_is_bad() -> None:
    from teg_plugin.scores import TEGScore

    strategy = TEGRandom(seed=0)
    with pytest.raises(ValueError, match="no results yet"):
        TEGRandom(space=None).best()
    strategy._tell(None, SPACE.arch_at(1), TEGScore.flagged("trial ended failed without a result"))
    with pytest.raises(ValueError, match="every one of the 1 results is bad; the first says: trial ended failed"):
        strategy.best()
    strategy._tell(None, SPACE.arch_at(2), TEGScore(10.0, 100.0, 1.0))
    assert strategy.best() == SPACE.arch_at(2)


def test_a_result_that_arrives_after_the_training_end_is_told(caplog: pytest.LogCaptureFixture) -> None:
    """NNI's training-service engine may report a trial's end before its final result."""
    from nni.nas.execution.event import FinalMetricEvent, TrainingEndEvent
    from nni.nas.space import ModelStatus

    strategy = TEGRandom(seed=0)
    late, lost, failed = (object() for _ in range(3))
    for number, model in enumerate((late, lost, failed)):
        strategy._running[id(model)] = (model, SPACE.arch_at(number))
    metric = {"default": 1.0, "ntk_cond": 10.0, "regions": 50.0, "kr_mse": 0.5, "bad": False}
    strategy._on_training_end(TrainingEndEvent(late, ModelStatus.Trained))
    strategy._on_training_end(TrainingEndEvent(lost, ModelStatus.Trained))
    strategy._on_training_end(TrainingEndEvent(failed, ModelStatus.Failed))
    strategy._on_final_metric(FinalMetricEvent(late, metric))
    assert [(arch, score.bad) for arch, score in strategy.results] == [
        (SPACE.arch_at(2), True),
        (SPACE.arch_at(0), False),
    ]
    with caplog.at_level("WARNING", logger="teg_plugin.nni._strategy"):
        strategy._tell_missing_results()  # the run is over: a result that never came counts as bad
    assert strategy.results[-1][0] == SPACE.arch_at(1) and strategy.results[-1][1].bad
    assert "ended without a result" in caplog.text and len(strategy.results) == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data": "cifar11"}, "unknown dataset 'cifar11'"),
        ({"cache": "foo://bar"}, "unknown database"),
        ({"device": "tpu"}, "unknown device"),
    ],
)
def test_evaluator_refuses_bad_settings_before_any_trial(settings: dict, message: str) -> None:
    # In the "ts" engine these would otherwise fail every trial, reported only in the trial logs.
    with pytest.raises(ValueError, match=message):
        TEGEvaluator(**settings)


def test_sample_mapping_helpers_round_trip() -> None:
    arch = SPACE.arch_at(1234)
    assert arch_from_sample(sample_from_arch(arch)) == arch


@pytest.mark.slow
def test_training_service_engine_with_concurrent_trials(
    evaluator: TEGEvaluator, nni_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NNI's training-service engine: each model is a trial process, two at a time (the test talks to 127.0.0.1)."""
    import socket

    import nni.experiment.launcher

    monkeypatch.setattr(nni.experiment.launcher, "Experiments", functools.partial(Experiments, home_dir=str(nni_home)))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    strategy = TEGEvolution(seed=2, budget=4, population_size=2, tournament_size=2)
    config = NasExperimentConfig("ts", "simplified", "local")
    config.experiment_working_directory = str(nni_home)
    config.trial_concurrency = 2
    config.max_trial_number = 4
    experiment = NasExperiment(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, strategy, config)
    try:
        experiment.run(port=port)
        top = experiment.export_top_models(top_k=1, formatter="dict")
    finally:
        experiment.stop()
    results = strategy.results
    assert len(results) == 4
    assert not any(score.bad for _, score in results)
    assert arch_from_sample(top[0]) == strategy.best()
    # The trial processes ranked themselves among the experiment's trials so far (shared log).
    log = nni_home / experiment.id / "teg_results.jsonl"
    assert len(log.read_text().splitlines()) == 4
