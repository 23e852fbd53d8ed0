"""The DARTS space through the adapters: Optuna (TEGSampler, ``space.suggest``), NNI
(:class:`~teg_plugin.nni.DartsModelSpace`, ``TEGEvaluator(space="darts")``, the TEG strategies) and
the ``teg-nas`` command line, on a tiny protocol."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import random
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch

from teg_plugin.cli import main
from teg_plugin.config import TEGConfig
from teg_plugin.optuna import DIRECTIONS, TEGSampler, best_trial, zero_cost_objective
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import TEGScore
from teg_plugin.spaces.darts import (
    DARTS_V1,
    DARTS_V2,
    DartsGenotype,
    DartsSpace,
    GenotypeError,
    count_parameters,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = DartsSpace()
TINY = TEGConfig(width=1, repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}
FAST = ["--dataset", "synthetic", "--repeat", "1", "--batch-size", "8", "--quiet", "--no-cache"]


@pytest.fixture(scope="module")
def scorer() -> TEGScorer:
    return TEGScorer(SPACE, data="synthetic", config=TINY, device="cpu", cache=None)


def assert_genotype(genotype: object) -> None:
    assert isinstance(genotype, DartsGenotype)
    assert SPACE.parse(SPACE.format(genotype)) == genotype


# --- Optuna -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("multi", [False, True], ids=["rank", "multi"])
def test_tegsampler_zero_cost_study(scorer: TEGScorer, multi: bool) -> None:
    sampler = TEGSampler(
        SPACE, scorer, strategy="evolution", seed=0, strategy_options={"population_size": 2, "tournament_size": 2}
    )
    directions = list(DIRECTIONS) if multi else ["minimize"]
    study = optuna.create_study(sampler=sampler, directions=directions)
    study.optimize(zero_cost_objective(SPACE, scorer, multi_objective=multi), n_trials=3)
    trials = study.trials
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for trial in trials:
        genotype = SPACE.from_params(trial.params)
        assert set(trial.params) == set(SPACE.choices())
        assert trial.user_attrs["arch"] == SPACE.format(genotype)
        assert SPACE.parse(trial.user_attrs["arch"]) == genotype
        assert trial.user_attrs.get("index") is None
        score = scorer.score(genotype)
        assert trial.user_attrs["bad"] is False and trial.user_attrs["ntk_cond"] == score.ntk_cond
        if multi:
            assert trial.values == [score.ntk_cond, score.regions, score.kr_mse]
    if multi:
        assert study.best_trials
    else:
        assert best_trial(study).user_attrs["arch"] in {t.user_attrs["arch"] for t in trials}


def test_space_suggest_under_a_plain_random_sampler() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: list[DartsGenotype] = []

    def objective(trial: optuna.Trial) -> float:
        genotype = SPACE.suggest(trial)
        seen.append(genotype)
        return float(sum(op.startswith("sep_conv") for op, _ in genotype.normal_pairs()))

    study.optimize(objective, n_trials=4)
    assert len(seen) == 4 and len(set(seen)) == 4
    for trial, genotype in zip(study.trials, seen, strict=True):
        assert genotype == SPACE.canonical(genotype)
        assert SPACE.to_params(genotype) == trial.params
        assert_genotype(genotype)
    distributions = study.trials[0].distributions
    assert {name: tuple(d.choices) for name, d in distributions.items()} == SPACE.choices()


def _fake_score_mask(mask: Mapping[str, Sequence[str]]) -> TEGScore:
    """sep_conv_3x3 share per edge, edges from low inputs weighing more (optimum: sep_conv_3x3 on 0 and 1)."""
    value = 0.0
    for key, ops in mask.items():
        if ops:
            weight = 1.0 / (1.0 + int(key.rsplit("<-", 1)[1]))
            value += weight * (1.0 + sum(op == "sep_conv_3x3" for op in ops) / len(ops))
    return TEGScore(ntk_cond=100.0 - value, regions=10.0 * value, kr_mse=1.0 / (1.0 + value))


class FakeDartsScorer:
    """A TEGScorer stand-in: instant scores of DARTS masks (the Optuna plugin only needs these)."""

    def __init__(self) -> None:
        self.space = SPACE
        self.n_measured = 0

    def score(self, arch: Hashable) -> TEGScore:
        return self.score_many([arch])[0]

    def score_many(self, archs: Iterable[Hashable], **_: Any) -> list[TEGScore]:
        return [self.score_mask(SPACE.mask_of(arch)) for arch in archs]

    def score_mask(self, mask: Mapping[str, Sequence[str]]) -> TEGScore:
        self.n_measured += 1
        return _fake_score_mask(mask)


def test_tegsampler_prunes_the_darts_supernet_with_a_fake_scorer() -> None:
    fake = FakeDartsScorer()
    study = optuna.create_study(sampler=TEGSampler(SPACE, fake, strategy="prune", seed=0))  # type: ignore[arg-type]
    study.optimize(zero_cost_objective(SPACE, fake), n_trials=2)  # type: ignore[arg-type]
    best_node = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    optimum = DartsGenotype.from_pairs(best_node * 4, best_node * 4)
    assert study.trials[0].user_attrs["arch"] == SPACE.format(optimum)
    assert SPACE.parse(study.trials[1].user_attrs["arch"]) != optimum
    assert fake.n_measured >= 792  # the supernet evaluations of the pruning, at least once


# --- NNI ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nni_api() -> Any:
    pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')
    with warnings.catch_warnings():
        # NNI 3.0 warns, once, about each newer torch.nn class it does not know (teg_plugin.nni's own
        # filter is reset by pytest around each test, so it is repeated for this first import).
        warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module", category=RuntimeWarning)
        import teg_plugin.nni as api  # before nni.nas: it sets NNI's framework to "none"

        for name in ("DartsModelSpace", "TEGEvaluator", "TEGEvolution"):
            getattr(api, name)
    return api


@pytest.fixture(scope="module")
def model_space(nni_api: Any) -> Any:
    return nni_api.DartsModelSpace(width=4, layers=3)


@pytest.fixture(scope="module")
def evaluator(nni_api: Any) -> Any:
    return nni_api.TEGEvaluator(space="darts", data="synthetic", config=SMALL, device="cpu")


def _genotypes(count: int, seed: int = 0) -> list[DartsGenotype]:
    rng = random.Random(seed)
    return [DARTS_V1, DARTS_V2, *(SPACE.sample(rng) for _ in range(count))]


def test_model_space_labels_are_the_darts_choices(model_space: Any) -> None:
    mutables = model_space.simplify()
    assert list(mutables) == list(SPACE.choices())
    for name, options in SPACE.choices().items():
        assert mutables[name].label == name
        assert tuple(mutables[name].values) == options


def test_every_nni_sample_is_a_darts_genotype(nni_api: Any, model_space: Any) -> None:
    import numpy as np
    from nni.mutable import MutableDict

    state = np.random.RandomState(0)
    for _ in range(50):
        sample = MutableDict(model_space.simplify()).random(random_state=state)
        genotype = nni_api.genotype_from_sample(sample)
        assert genotype == SPACE.canonical(genotype)
        assert nni_api.sample_from_genotype(genotype) == dict(sample)
    for genotype in _genotypes(5):
        sample = nni_api.sample_from_genotype(genotype)
        assert sample == nni_api.sample_from_genotype(SPACE.format(genotype))
        assert nni_api.genotype_from_sample(sample) == genotype.canonical()


def test_freeze_gives_the_eval_network_with_count_parameters(nni_api: Any, model_space: Any) -> None:
    import torch
    from nni.nas.space import SimplifiedModelSpace

    from teg_plugin.spaces.darts import DartsEvalNetwork

    simplified = SimplifiedModelSpace.from_model(model_space, None)
    for genotype in _genotypes(3):
        sample = nni_api.sample_from_genotype(genotype)
        for model in (model_space.freeze(sample), simplified.freeze(sample).executable_model()):
            assert type(model) is DartsEvalNetwork
            assert sum(p.numel() for p in model.parameters()) == count_parameters(genotype, width=4, layers=3)
    assert model_space.freeze(sample) is not model_space.freeze(sample)  # a fresh module each time
    assert model_space.freeze(sample).eval()(torch.zeros(2, 3, 8, 8)).shape == (2, 10)
    # Defaults: DARTS's search-phase size, C=16 and 8 cells.
    default = nni_api.DartsModelSpace().freeze(nni_api.sample_from_genotype(DARTS_V2))
    assert sum(p.numel() for p in default.parameters()) == count_parameters(DARTS_V2, width=16, layers=8)
    with pytest.raises(NotImplementedError, match="freeze"):
        model_space(torch.zeros(1, 3, 8, 8))


def test_bad_samples_are_rejected(nni_api: Any) -> None:
    sample = nni_api.sample_from_genotype(DARTS_V2)
    with pytest.raises(GenotypeError, match="reduce/node5/op1"):
        nni_api.genotype_from_sample({k: v for k, v in sample.items() if k != "reduce/node5/op1"})
    with pytest.raises(GenotypeError, match="conv_7x7"):
        nni_api.genotype_from_sample({**sample, "normal/node2/op0": "conv_7x7"})
    with pytest.raises(GenotypeError):
        nni_api.sample_from_genotype("Genotype(normal=[], reduce=[])")


def _hub_darts_v2_sample() -> dict[str, Any]:
    """The ``darts-v2`` sample of ``nni.nas.hub.pytorch.DARTS.load_searched_model``, read from NNI's
    source (importing the hub needs PyTorch Lightning)."""
    spec = importlib.util.find_spec("nni")
    assert spec is not None and spec.submodule_search_locations
    source = Path(list(spec.submodule_search_locations)[0]) / "nas" / "hub" / "pytorch" / "nasnet.py"
    if not source.is_file():
        pytest.skip(f"NNI's hub source not found at {source}")
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Dict) and any(
            isinstance(key, ast.Constant) and key.value == "normal/op_2_0" for key in node.keys
        ):
            return ast.literal_eval(node)
    pytest.skip("no darts-v2 sample in NNI's hub source")


def test_hub_sample_mapping(nni_api: Any) -> None:
    hub = _hub_darts_v2_sample()
    assert nni_api.genotype_from_hub_sample(hub) == DARTS_V2.canonical()
    with pytest.raises(GenotypeError, match="both pairs take input 0"):
        nni_api.genotype_from_hub_sample({**hub, "normal/input_2_1": [0]})
    with pytest.raises(GenotypeError, match="reduce/input_5_1"):
        nni_api.genotype_from_hub_sample({k: v for k, v in hub.items() if k != "reduce/input_5_1"})


def test_evaluator_scores_a_frozen_darts_model(nni_api: Any, model_space: Any, evaluator: Any) -> None:
    from nni.nas.evaluator import Evaluator
    from nni.nas.space import SimplifiedModelSpace

    assert evaluator.scorer.config == TEGConfig.for_space(SPACE, **SMALL)
    assert evaluator.scorer.config.width == 1  # the DARTS proxy protocol
    sample = nni_api.sample_from_genotype(DARTS_V2)
    result = evaluator.evaluate(model_space.freeze(sample), sample=sample)
    score = evaluator.scorer.score(DARTS_V2)
    assert result["bad"] is False and not score.bad
    assert (result["ntk_cond"], result["regions"], result["kr_mse"]) == (score.ntk_cond, score.regions, score.kr_mse)
    assert evaluator.arch_of(None, sample) == DARTS_V2.canonical()
    # Outside NNI, without a sample, the frozen network itself names its genotype.
    assert evaluator.arch_of(model_space.freeze(sample)) == DARTS_V2.canonical()
    with pytest.raises(TypeError, match="teg_plugin.nni.DartsModelSpace"):
        evaluator.arch_of(torch.nn.Linear(2, 2))
    # Inside NNI the genotype comes from the trial's sample.
    frozen = SimplifiedModelSpace.from_model(model_space, evaluator).freeze(nni_api.sample_from_genotype(DARTS_V1))
    with Evaluator.mock_runtime(frozen):
        reported = evaluator.evaluate(frozen.executable_model())
    assert frozen.metric == reported["default"]
    assert reported["ntk_cond"] == evaluator.scorer.score(DARTS_V1).ntk_cond


def test_docstring_examples_of_the_nni_darts_module(nni_api: Any) -> None:
    # tests/test_docstrings.py leaves the optional teg_plugin.nni out; this module's examples run here.
    import doctest

    module = importlib.import_module("teg_plugin.nni._darts")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", ["evolution", "reinforce", "random"])
def test_nni_experiment_searches_darts(nni_api: Any, evaluator: Any, nni_home: Path, name: str) -> None:
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from teg_plugin.strategies import make_strategy

    budget = 3
    options: dict[str, Any] = {
        "evolution": {"population_size": 2, "tournament_size": 2},
        "reinforce": {"learning_rate": 0.1},
        "random": {},
    }[name]
    strategy_class = {"evolution": nni_api.TEGEvolution, "reinforce": nni_api.TEGReinforce, "random": nni_api.TEGRandom}
    strategy = strategy_class[name](space="darts", seed=5, budget=budget, **options)
    config = NasExperimentConfig("sequential", "simplified")
    config.experiment_working_directory = str(nni_home)
    experiment = NasExperiment(nni_api.DartsModelSpace(width=4, layers=3), evaluator, strategy, config)
    try:
        experiment.run()
        top = experiment.export_top_models(top_k=budget, formatter="dict")
    finally:
        experiment.stop()

    results = strategy.results
    assert len(results) == budget and not any(score.bad for _, score in results)
    # The algorithm ran unchanged: the same proposals as a direct ask/score/tell loop.
    direct = make_strategy(name, SPACE, seed=5, **options)
    for genotype, score in results:
        assert_genotype(genotype)
        assert direct.ask() == genotype
        direct.tell(genotype, evaluator.scorer.score(genotype))
        assert score.ntk_cond == evaluator.scorer.score(genotype).ntk_cond
    assert nni_api.genotype_from_sample(top[0]) == strategy.best()
    # Checkpoints hold genotype texts and replay them.
    restored = strategy_class[name](space="darts", seed=5, budget=budget, **options)
    restored.load_state_dict(strategy.state_dict())
    assert restored.results == results


# --- the command line ---------------------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_score_darts_genotypes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(
        capsys, "score", "--space", "darts", "--arch", DARTS_V2.format(), DARTS_V1.format(), *FAST, "--format", "json"
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [row["arch"] for row in rows] == [DARTS_V2.format(), DARTS_V1.format()]
    assert all(row["index"] is None and row["bad"] is False and row["regions"] > 1 for row in rows)
    assert sorted(row["rank"] for row in rows) == [1, 2]


def test_cli_score_darts_sample(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["score", "--space", "darts", "--sample", "2", "--seed", "0"]
    code, out, err = _run(capsys, *argv, *FAST, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    rng = random.Random(0)
    assert [row["arch"] for row in rows] == [SPACE.format(SPACE.sample(rng)) for _ in range(2)]
    assert all(row["index"] is None for row in rows)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--arch", "Genotype(normal=[('sep_conv_3x3', 0)], reduce=[])"], "expected 8 (op, input) pairs"),
        (["--arch", DARTS_V2.format().replace("dil_conv_3x3", "conv_9x9")], "unknown op 'conv_9x9'"),
        (["--arch", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"], "not a Genotype"),
        (["--index", "3"], "darts has no index"),
    ],
)
def test_cli_score_bad_darts_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    code, out, err = _run(capsys, "score", "--space", "darts", *argv, *FAST)
    assert code == 2 and out == ""
    assert err.startswith("teg-nas: error: ") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_search_darts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'darts.db'}"
    argv = ["search", "--space", "darts", "--strategy", "random", "--budget", "2", "--storage", storage]
    code, out, err = _run(capsys, *argv, *FAST, "--format", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert_genotype(SPACE.parse(summary["best_arch"]))
    assert summary["index"] is None and summary["n_trials"] == 2 and summary["bad"] is False
    assert summary["study_name"] == "teg-darts-random-seed0"
    assert not any(key.startswith("benchmark_") for key in summary)
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    assert {t.user_attrs["arch"] for t in study.trials} >= {summary["best_arch"]}
