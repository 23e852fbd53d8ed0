"""Prune a supernet with TEG in NNI: TE-NAS's supernet path, for NAS-Bench-201 or your own model space.

``TEGPruning`` starts from the supernet in which every candidate of every choice is active (their
outputs averaged), and round after round drops the least important candidate of each choice, as
judged by how much removing it hurts T (NTK condition number), E (linear regions) and G (NTK
kernel regression). A supernet evaluation is a call of the evaluator's scorer, not an NNI trial;
the pruned architecture is then submitted to NNI's engine as the experiment's one model, so
``export_top_models`` returns it. No training anywhere.

    python examples/nni_pruning.py                          # your own model space (PrunableCNN below), the paper's protocol
    python examples/nni_pruning.py --space nas-bench-201    # NB201: the pick of `teg-nas search --strategy prune --budget 1`
    python examples/nni_pruning.py --small                  # seconds: a reduced protocol, synthetic images

The images are the CIFAR-10 sample embedded in teg-plugin (500 images), so nothing is downloaded.
NNI writes its experiment log under ``~/nni-experiments``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import NB201ModelSpace, TEGEvaluator, TEGPruning, arch_from_sample  # isort: skip

import nni
import torch
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableConv2d
from torch import nn

#: ``--small``: one initialisation, 8-image NTK batches, 2 x 64 crops for the linear regions.
SMALL_CONFIG = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}


def conv_bn_relu(width: int, kernel: Any) -> nn.Module:
    """A convolution (``kernel`` an int or an ``nni.choice``; 'same' padding), BN, ReLU."""
    return nn.Sequential(
        MutableConv2d(width, width, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(width), nn.ReLU()
    )


class PrunableCNN(ModelSpace):
    """A stem, two blocks whose operations are chosen, a chosen skip connection, a classifier.

    Every choice keeps the shape of the tensor it makes, so the space has a supernet: ``block1``
    and ``block2`` (``LayerChoice``), the kernel size of block 1's convolution (``nni.choice`` in a
    ``MutableConv2d``) and which feature map the skip connection adds (``InputChoice``). A width
    choice would not (its candidates' outputs differ in shape) and ``TEGPruning`` refuses it.

    Args:
        width: channels after the stem.
        in_channels: input channels.
        stem: whether a strided 3x3 convolution and a max-pool first map the input to ``width``
            channels at a quarter of its size (E's thin model space takes inputs that already have
            the channels, so it has none).
        num_classes: classifier outputs.
    """

    def __init__(self, width: int = 16, in_channels: int = 3, stem: bool = True, num_classes: int = 10) -> None:
        super().__init__()
        # The stem downsamples 32x32 images to 8x8: the NTK's per-image gradients stay cheap on a CPU.
        self.stem = (
            nn.Sequential(
                nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            if stem
            else nn.Identity()
        )
        kernel = nni.choice("kernel", [3, 5])
        self.block1 = LayerChoice(
            {
                "conv": conv_bn_relu(width, kernel),
                "maxpool3x3": nn.MaxPool2d(3, 1, 1),
                "avgpool3x3": nn.AvgPool2d(3, 1, 1),
                "identity": nn.Identity(),
            },
            label="block1",
        )
        self.block2 = LayerChoice(
            {
                "conv3x3": conv_bn_relu(width, 3),
                "conv1x1": conv_bn_relu(width, 1),
                "maxpool3x3": nn.MaxPool2d(3, 1, 1),
                "identity": nn.Identity(),
            },
            label="block2",
        )
        # The skip connection adds the stem's output (0) or block 1's (1) to block 2's.
        self.skip = InputChoice(n_candidates=2, n_chosen=1, reduction="sum", label="skip")
        # A ReLU after the residual sum: E counts ReLU patterns, and a thin network whose blocks are
        # pooling or identity would have none otherwise.
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.block1(s)
        b = self.block2(a)
        return self.head(b + self.skip([s, a]))


def thin_space(width: int) -> PrunableCNN:
    """E's thin model space: the same choices at ``width`` channels, no stem (its inputs are the
    protocol's ``(batch, width, 3, 3)`` crops). ``TEGPruning`` builds its supernets as the model's."""
    return PrunableCNN(width=width, in_channels=width, stem=False)


def thin_network(sample: dict[str, Any], width: int) -> nn.Module:
    """E's thin network of one architecture, for the evaluator's score of the pruned model."""
    return thin_space(width).freeze(sample)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--space",
        choices=("user", "nas-bench-201"),
        default="user",
        help="user: PrunableCNN above; nas-bench-201: NB201ModelSpace (default: %(default)s)",
    )
    parser.add_argument("--small", action="store_true", help="a quick check: a reduced protocol, synthetic images")
    parser.add_argument(
        "--data",
        default=None,
        help="images: embedded, synthetic, cifar10... (default: embedded; synthetic with --small)",
    )
    parser.add_argument(
        "--score-seed", type=int, default=0, help="seed of the scoring inputs and weights (default: %(default)s)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    data = args.data or ("synthetic" if args.small else "embedded")
    config = {**(SMALL_CONFIG if args.small else {}), "seed": args.score_seed}
    logging.getLogger("nni").setLevel(logging.WARNING)  # NNI's lines; `nni.teg_plugin.pruning` shows the rounds
    logging.getLogger("nni.teg_plugin.pruning").setLevel(logging.INFO)

    if args.space == "user":
        model_space: ModelSpace = PrunableCNN()
        evaluator = TEGEvaluator(
            space=None, data=data, config=config, device=args.device, thin=f"{__name__}:thin_network"
        )  # an import path keeps it serialisable
        strategy = TEGPruning(space=None, thin_space=thin_space, progress=not args.quiet)
    else:
        model_space = NB201ModelSpace()
        evaluator = TEGEvaluator(data=data, config=config, device=args.device)
        strategy = TEGPruning(progress=not args.quiet)
    print(
        f"pruning {type(model_space).__name__} with TEG on {data} images, score seed {args.score_seed}"
        f"{' (reduced protocol)' if args.small else ''}"
    )

    experiment = NasExperiment(model_space, evaluator, strategy, NasExperimentConfig("sequential", "simplified"))
    start = time.perf_counter()
    try:
        experiment.run()
        top = experiment.export_top_models(top_k=1, formatter="dict")
    finally:
        experiment.stop()
    seconds = time.perf_counter() - start

    pruning = strategy.pruning
    assert pruning is not None and strategy.space is not None
    for finished in pruning.rounds:
        dropped = ", ".join(f"{key}: {option}" for key, option in finished.dropped.items())
        print(f"  round {finished.index}: dropped {dropped}")
    sample = strategy.sample_of(strategy.best())
    print(f"pruned architecture: {json.dumps(sample, sort_keys=True)}")
    print(f"{len(pruning.rounds)} rounds, {pruning.n_supernet_evaluations} supernet evaluations, {seconds:.1f} s")
    print(f"export_top_models: {json.dumps(top[0], sort_keys=True)}")
    if args.space == "nas-bench-201":
        print(f"arch string: {arch_from_sample(top[0])}")
    print("the pruned model, ready to train:")
    print(model_space.freeze(sample) if hasattr(model_space, "freeze") else sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
