"""Supernet pruning as an NNI 3.0 strategy (TEGPruning): NB201 as the CLI prunes it, a user's own
model space, checkpoints, and the spaces that cannot be pruned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nni", reason='NNI is not installed: pip install "teg-plugin[nni]"')

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import (  # noqa: E402, I001
    NB201ModelSpace,
    TEGEvaluator,
    TEGPruning,
    TEGStrategy,
    arch_from_sample,
    space_from_model_space,
)

import nni  # noqa: E402
import torch  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableConv2d  # noqa: E402
from torch import nn  # noqa: E402

from teg_plugin.config import TEGConfig  # noqa: E402
from teg_plugin.scorer import TEGScorer  # noqa: E402
from teg_plugin.spaces import NB201Space  # noqa: E402
from teg_plugin.strategies import PruningStrategy  # noqa: E402

SMALL = {"repeat": 1, "batch_size": 8, "regions_batch_size": 50}


def _experiment(model_space: Any, evaluator: Any, strategy: Any, home: Path) -> NasExperiment:
    config = NasExperimentConfig("sequential", "simplified")
    config.experiment_working_directory = str(home)
    return NasExperiment(model_space, evaluator, strategy, config)


def _run(model_space: Any, evaluator: Any, strategy: Any, home: Path) -> list[dict]:
    experiment = _experiment(model_space, evaluator, strategy, home)
    try:
        experiment.run()
        return experiment.export_top_models(top_k=3, formatter="dict")
    finally:
        experiment.stop()


@pytest.mark.slow
def test_nb201_pick_is_the_cli_pick(tmp_path: Path, nni_home: Path) -> None:
    # The CLI's regions protocol is its default (it has no option for it); the rest is reduced.
    seed = 3
    command = [
        sys.executable,
        "-m",
        "teg_plugin.cli",
        "search",
        "--strategy",
        "prune",
        "--budget",
        "1",
        "--dataset",
        "synthetic",
        "--repeat",
        "1",
        "--batch-size",
        "8",
        "--score-seed",
        str(seed),
        "--device",
        "cpu",
        "--no-cache",
        "--storage",
        f"sqlite:///{tmp_path / 'cli.db'}",
        "--format",
        "json",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    cli_pick = json.loads(result.stdout)["best_arch"]

    evaluator = TEGEvaluator(data="synthetic", config={"repeat": 1, "batch_size": 8, "seed": seed}, device="cpu")
    strategy = TEGPruning(progress=False)
    top = _run(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, strategy, nni_home)

    assert len(top) == 1
    assert str(arch_from_sample(top[0])) == str(strategy.best()) == cli_pick
    # NB201's 6 edges x 4 ops (no `none`, as TE-NAS): 3 rounds, 25 + 19 + 13 supernet evaluations.
    assert strategy.pruning is not None
    assert len(strategy.pruning.rounds) == 3 and strategy.pruning.n_supernet_evaluations == 57
    # The pruned model was submitted to and scored by NNI's engine.
    models = list(strategy.list_models(sort=False))
    assert len(models) == 1 and models[0].metric is not None


def test_resumes_from_the_last_finished_round(nni_home: Path) -> None:
    evaluator = TEGEvaluator(data="synthetic", config=SMALL, device="cpu")
    whole = TEGPruning(progress=False)
    _run(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, whole, nni_home)

    interrupted = TEGPruning(progress=False)
    finish_round = interrupted._round_finished

    def stop_after_round_1(finished: Any) -> None:
        finish_round(finished)
        if finished.index == 1:
            raise KeyboardInterrupt

    interrupted._round_finished = stop_after_round_1  # type: ignore[method-assign]
    # NNI's experiment catches the Ctrl-C, stops, and saves its checkpoint (the strategy's state_dict).
    _run(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, interrupted, nni_home)
    state = interrupted.state_dict()  # what NNI's checkpoint holds when the experiment stops
    assert len(state["pruning_rounds"]) == 2 and state["results"] == []

    resumed = TEGPruning(progress=False)
    resumed.load_state_dict(state)  # as NasExperiment.resume does (before the scorer is known: replayed later)
    _run(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, resumed, nni_home)
    assert resumed.pruning is not None
    # Only the last round was scored: 1 + 6 x 2 options.
    assert resumed.pruning.n_supernet_evaluations == 13 and len(resumed.pruning.rounds) == 1
    assert resumed.best() == whole.best()
    assert resumed.pruning.finished_rounds == whole.pruning.finished_rounds  # type: ignore[union-attr]


def test_a_bad_checkpoint_is_refused() -> None:
    strategy = PruningStrategy(NB201Space(), lambda mask: pytest.fail("not scored"))
    with pytest.raises(ValueError, match="checkpoint round 0: '1<-0' has no active option 'none'"):
        strategy.restore([{"1<-0": "none"}])


class Cells(ModelSpace):
    """A small space whose every choice fits a supernet: two LayerChoices, a kernel nni.choice in a
    MutableConv2d, an InputChoice."""

    def __init__(self, width: int = 6, in_channels: int = 3, stem: bool = True) -> None:
        super().__init__()
        kernel = nni.choice("kernel", [1, 3])
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU()) if stem else nn.Identity()
        self.op1 = LayerChoice(
            {
                "conv": nn.Sequential(MutableConv2d(width, width, kernel, padding=kernel // 2), nn.ReLU()),
                "pool": nn.MaxPool2d(3, 1, 1),
                "skip": nn.Identity(),
            },
            label="op1",
        )
        self.op2 = LayerChoice(
            [nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU()), nn.AvgPool2d(3, 1, 1)], label="op2"
        )
        self.skip = InputChoice(2, 1, label="skip")
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.op1(s)
        return self.head(self.op2(a) + self.skip([s, a]))


def thin_cells(width: int) -> Cells:
    return Cells(width=width, in_channels=width, stem=False)


def test_user_model_space_prunes_end_to_end(nni_home: Path) -> None:
    evaluator = TEGEvaluator(
        space=None,
        data="synthetic",
        config=SMALL,
        device="cpu",
        thin=lambda sample, width: thin_cells(width).freeze(sample),
    )
    strategy = TEGPruning(space=None, thin_space=thin_cells, progress=False)
    top = _run(Cells(), evaluator, strategy, nni_home)

    assert strategy.pruning is not None and strategy.space is not None
    # op1: 3, kernel: 2, op2: 2, skip: 2 options -> a round of 1 + 9 evaluations, then 1 + 2 (op1).
    assert strategy.pruning.n_supernet_evaluations == 10 + 3
    assert len(top) == 1 and top[0] == strategy.sample_of(strategy.best())
    assert set(top[0]) == {"op1", "kernel", "op2", "skip"}
    Cells().freeze(top[0])  # a sample of the model space, frozen as NNI freezes it

    # The same pruning driven directly on the same supernets and scorer gives the same pick.
    space = space_from_model_space(Cells(), supernet=True, thin_space=thin_cells)
    scorer = TEGScorer(space, "synthetic", TEGConfig.from_dict(SMALL), device="cpu")
    assert PruningStrategy(space, scorer.score_mask_repeats).run() == strategy.best()


class WidthChoice(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        width = nni.choice("width", [4, 8])
        self.stem = nn.Sequential(MutableConv2d(3, width, 3, padding=1), nn.ReLU())
        self.op = LayerChoice([nn.Identity(), nn.MaxPool2d(3, 1, 1)], label="op")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.stem(x)).mean((2, 3))


class ReadByTheSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.scale = self.add_mutable(nni.choice("scale", [1, 2]))
        self.op = LayerChoice([nn.Identity(), nn.ReLU()], label="op")
        self.head = nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.op(x).mean((2, 3)))


@pytest.mark.parametrize(
    ("model_space", "message"),
    [
        (
            WidthChoice,
            r"choice 'width' cannot be put in a supernet: its candidates' outputs cannot be averaged "
            r"\(width=4 -> \(2, 4, \d+, \d+\), width=8 -> \(2, 8, \d+, \d+\)\)",
        ),
        (ReadByTheSpace, r"choice 'scale' cannot be put in a supernet: only LayerChoice, InputChoice and nni.choice"),
    ],
)
def test_a_space_without_a_supernet_is_refused_in_one_line(model_space: type, message: str, nni_home: Path) -> None:
    evaluator = TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu")
    with pytest.raises(ValueError, match="TEGPruning cannot prune this model space: " + message) as err:
        _run(model_space(), evaluator, TEGPruning(space=None, progress=False), nni_home)
    assert "\n" not in str(err.value)


def test_settings_that_do_not_fit(nni_home: Path) -> None:
    with pytest.raises(ValueError, match="thin_space applies to space=None"):
        TEGPruning(thin_space=thin_cells)
    with pytest.raises(ValueError, match="budget"):
        TEGPruning(budget=0)
    with pytest.raises(ValueError, match="use TEGPruning"):
        TEGStrategy("prune")
    evaluator = TEGEvaluator(space=None, data="synthetic", config=SMALL, device="cpu")
    with pytest.raises(ValueError, match=r"TEGPruning prunes nas-bench-201 but the evaluator scores any model space"):
        _run(NB201ModelSpace(width=2, cells_per_stage=1), evaluator, TEGPruning(progress=False), nni_home)
