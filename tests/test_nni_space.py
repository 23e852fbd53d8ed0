"""NB201 as an NNI ModelSpace (samples <-> arch strings, 1:1) and the zero-cost TEGEvaluator."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import (  # noqa: E402, I001
    NB201ModelSpace,
    TEGEvaluator,
    arch_from_hub_sample,
    arch_from_sample,
    sample_from_arch,
    score_from_metrics,
)
from teg_plugin.nni.metrics import BAD_DEFAULT, log_and_rank, rank_default, teg_metrics, trial_experiment_dir  # noqa: E402

from nni.mutable import MutableDict  # noqa: E402
from nni.nas.evaluator import Evaluator  # noqa: E402
from nni.nas.space import SimplifiedModelSpace  # noqa: E402
from teg_plugin.scores import TEGScore  # noqa: E402
from teg_plugin.spaces import NB201Space  # noqa: E402
from teg_plugin.spaces.nb201 import EDGE_NAMES, OPS, NB201Network  # noqa: E402

SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SPACE = NB201Space()


@pytest.fixture(scope="module")
def model_space() -> NB201ModelSpace:
    return NB201ModelSpace(width=2, cells_per_stage=1)


def test_labels_and_options_are_ours(model_space: NB201ModelSpace) -> None:
    mutables = model_space.simplify()
    assert list(mutables) == list(EDGE_NAMES)
    for edge in EDGE_NAMES:
        assert mutables[edge].label == edge
        assert list(mutables[edge].values) == list(OPS)


def test_every_nni_sample_is_one_nb201_arch(model_space: NB201ModelSpace) -> None:
    # NNI's own enumeration of the space: 15,625 samples, each one arch, every arch once.
    indices = set()
    count = 0
    for sample in MutableDict(model_space.simplify()).grid():
        arch = arch_from_sample(sample)
        assert sample_from_arch(arch) == dict(sample)
        assert sample_from_arch(SPACE.format(arch)) == dict(sample)
        indices.add(SPACE.index(arch))
        count += 1
    assert count == 15_625
    assert indices == set(range(15_625))


def test_frozen_model_is_our_network(model_space: NB201ModelSpace) -> None:
    rng = random.Random(0)
    simplified = SimplifiedModelSpace.from_model(model_space, None)
    for _ in range(5):
        arch = SPACE.sample(rng)
        frozen = model_space.freeze(sample_from_arch(arch))
        assert isinstance(frozen, NB201Network)
        assert SPACE.arch_from_mask(frozen.cells[0].mask) == arch
        # NNI's simplified format re-creates the model from the sample, with the same result.
        executable = simplified.freeze(sample_from_arch(arch)).executable_model()
        assert isinstance(executable, NB201Network)
        assert SPACE.arch_from_mask(executable.cells[0].mask) == arch


def test_bad_samples_are_rejected() -> None:
    sample = sample_from_arch(ARCH)
    with pytest.raises(ValueError, match="3<-2"):
        arch_from_sample({k: v for k, v in sample.items() if k != "3<-2"})
    with pytest.raises(ValueError, match="conv_5x5"):
        arch_from_sample({**sample, "1<-0": "conv_5x5"})


def test_hub_sample_mapping() -> None:
    # nni.nas.hub.pytorch.NasBench201 labels edge i -> j "cell/i_j" and calls the convolutions conv_kxk.
    arch = SPACE.parse(ARCH)
    hub_names = {"nor_conv_1x1": "conv_1x1", "nor_conv_3x3": "conv_3x3"}
    hub = {
        f"cell/{edge.split('<-')[1]}_{edge.split('<-')[0]}": hub_names.get(op, op)
        for edge, op in zip(EDGE_NAMES, arch.ops)
    }
    assert arch_from_hub_sample(hub) == arch


def test_rank_default_and_metrics() -> None:
    good = TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.1)
    worse = TEGScore(ntk_cond=20.0, regions=50.0, kr_mse=0.2)
    bad = TEGScore.flagged("singular")
    assert rank_default(good, []) == -3.0
    assert rank_default(good, [worse]) == -1.5
    assert rank_default(worse, [good, bad]) == -3.0
    assert rank_default(bad, [good]) == BAD_DEFAULT
    metrics = teg_metrics(bad, BAD_DEFAULT)
    assert metrics["ntk_cond"] is None and metrics["bad"] is True
    json.dumps(metrics)  # JSON-ready (NNI sends it as JSON)
    assert score_from_metrics(metrics).bad
    round_trip = score_from_metrics(json.dumps(teg_metrics(good, -3.0)))
    assert (round_trip.ntk_cond, round_trip.regions, round_trip.kr_mse, round_trip.bad) == (10.0, 100.0, 0.1, False)
    with pytest.raises(ValueError, match="ntk_cond"):
        score_from_metrics(0.5)


def test_log_and_rank_ranks_across_processes(tmp_path: Path) -> None:
    log = tmp_path / "exp" / "teg_results.jsonl"
    assert log_and_rank(log, TEGScore(ntk_cond=20.0, regions=50.0, kr_mse=0.2), arch="a") == -3.0
    assert log_and_rank(log, TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.1), arch="b") == -1.5
    assert log_and_rank(log, TEGScore.flagged("x")) == BAD_DEFAULT
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line.get("arch") for line in lines] == ["a", "b", None]


def test_trial_experiment_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("NNI_PLATFORM", "NNI_OUTPUT_DIR", "NNI_SYS_DIR", "NNI_EXP_ID"):
        monkeypatch.delenv(name, raising=False)
    assert trial_experiment_dir() is None
    trial = tmp_path / "abc123" / "environments" / "local-env" / "trials" / "T1"
    trial.mkdir(parents=True)
    monkeypatch.setenv("NNI_PLATFORM", "local")
    monkeypatch.setenv("NNI_EXP_ID", "abc123")
    monkeypatch.setenv("NNI_OUTPUT_DIR", str(trial))
    assert trial_experiment_dir() == (tmp_path / "abc123").resolve()


@pytest.fixture(scope="module")
def evaluator() -> TEGEvaluator:
    return TEGEvaluator(data="synthetic", config=SMALL, device="cpu")


def test_evaluator_scores_one_model_like_the_scorer(evaluator: TEGEvaluator, model_space: NB201ModelSpace) -> None:
    arch = SPACE.parse(ARCH)
    model = model_space.freeze(sample_from_arch(arch))
    result = evaluator.evaluate(model)  # outside NNI: returned, not reported
    score = evaluator.scorer.score(arch)
    assert result["bad"] is False
    assert result["ntk_cond"] == pytest.approx(score.ntk_cond)
    assert result["regions"] == score.regions
    assert result["kr_mse"] == pytest.approx(score.kr_mse)
    assert -3.0 <= result["default"] < 0.0
    assert set(result) == {"default", "ntk_cond", "regions", "kr_mse", "bad"}


def test_evaluator_reports_inside_nni(evaluator: TEGEvaluator, model_space: NB201ModelSpace) -> None:
    simplified = SimplifiedModelSpace.from_model(model_space, evaluator)
    frozen = simplified.freeze(sample_from_arch(ARCH))
    with Evaluator.mock_runtime(frozen):
        result = evaluator.evaluate(frozen.executable_model())
    # NNI keeps "default" as the model's metric.
    assert frozen.metric == result["default"]
    assert math.isfinite(frozen.metric)


def test_evaluator_is_traced_and_shares_its_scorer(evaluator: TEGEvaluator) -> None:
    copy = evaluator.trace_copy().get()
    assert isinstance(copy, TEGEvaluator)
    assert copy.scorer is evaluator.scorer
    assert copy.trace_kwargs["config"] == SMALL


def test_evaluator_rejects_a_foreign_model(evaluator: TEGEvaluator) -> None:
    import torch

    with pytest.raises(TypeError, match="NB201ModelSpace"):
        evaluator.evaluate(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="unknown TEGConfig"):
        TEGEvaluator(config={"repeats": 2})


@pytest.mark.parametrize("name", ["metrics", "_space", "_evaluator", "_strategy", "_tuner"])
def test_docstring_examples(name: str) -> None:
    # tests/test_docstrings.py leaves the optional teg_plugin.nni out; its examples run here.
    import doctest
    import importlib

    module = importlib.import_module(f"teg_plugin.nni.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {module.__name__}"
