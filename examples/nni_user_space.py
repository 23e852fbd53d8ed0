"""Search your own NNI model space with TEG: no training.

A small CNN written as an NNI 3.0 ``ModelSpace``: a ``LayerChoice`` picks each of its two blocks'
operation, a single-pick ``InputChoice`` picks which earlier feature map the skip connection adds,
and ``nni.choice`` picks the width. TEG's regularised evolution (``TEGEvolution``, or ``--strategy
random`` / ``reinforce``) searches it through NNI's ``NasExperiment`` in the sequential engine (every
model is scored in this process; nothing listens on the network), and the zero-cost
``TEGEvaluator(space=None)`` scores each frozen model as it is built: T and G on the model, E on a
thin version of it (``thin_network`` below), instead of training it.

    python examples/nni_user_space.py                  # 20 models, the paper's protocol (~10 s a model on 2 CPU cores)
    python examples/nni_user_space.py --small          # seconds: 8 models, a reduced protocol, synthetic images
    python examples/nni_user_space.py --device cuda --budget 100 --strategy random

The images are the CIFAR-10 sample embedded in teg-plugin (500 images), so nothing is downloaded.
NNI writes its experiment log under ``~/nni-experiments``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

# teg_plugin.nni first: it sets NNI's framework to "none" before nni.nas is imported.
from teg_plugin.nni import TEGEvaluator, TEGEvolution, TEGRandom, TEGReinforce, space_from_model_space  # isort: skip

import nni
import torch
from nni.nas.experiment import NasExperiment, NasExperimentConfig
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear
from torch import nn

from teg_plugin.scores import rank_sums

#: ``--small``: one initialisation, 8-image NTK batches, 2 x 64 crops for the linear regions.
SMALL_CONFIG = {"repeat": 1, "batch_size": 8, "regions_batch_size": 64, "regions_batches": 2}


def conv_bn_relu(width: Any, kernel: int) -> nn.Module:
    """A ``kernel x kernel`` convolution of ``width`` channels (an ``nni.choice`` or an int), BN, ReLU."""
    return nn.Sequential(
        MutableConv2d(width, width, kernel, padding=kernel // 2, bias=False), MutableBatchNorm2d(width), nn.ReLU()
    )


def stem_block(in_channels: int, width: Any) -> nn.Module:
    """The stem: a 3x3 convolution from ``in_channels`` to ``width``, BN, ReLU."""
    return nn.Sequential(
        MutableConv2d(in_channels, width, 3, padding=1, bias=False), MutableBatchNorm2d(width), nn.ReLU()
    )


class SmallCNN(ModelSpace):
    """A stem, two blocks whose operations are chosen, a chosen skip connection, and a classifier.

    Args:
        widths: the width choices (``nni.choice("width", widths)``).
        in_channels: input channels.
        stem: whether a 3x3 convolution first maps the input to the width (the thin network for E
            takes inputs that already have it, so it has no stem).
        num_classes: classifier outputs.
    """

    def __init__(
        self, widths: Sequence[int] = (8, 16, 32), in_channels: int = 3, stem: bool = True, num_classes: int = 10
    ) -> None:
        super().__init__()
        width = nni.choice("width", list(widths))
        self.stem = stem_block(in_channels, width) if stem else nn.Identity()
        self.block1 = LayerChoice(
            {"conv3x3": conv_bn_relu(width, 3), "conv5x5": conv_bn_relu(width, 5), "maxpool3x3": nn.MaxPool2d(3, 1, 1)},
            label="block1",
        )
        self.block2 = LayerChoice(
            {"conv3x3": conv_bn_relu(width, 3), "conv1x1": conv_bn_relu(width, 1), "identity": nn.Identity()},
            label="block2",
        )
        # The skip connection adds the stem's output (0) or block 1's (1) to block 2's.
        self.skip = InputChoice(n_candidates=2, n_chosen=1, reduction="sum", label="skip")
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), MutableLinear(width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stem(x)
        a = self.block1(s)
        b = self.block2(a)
        return self.head(b + self.skip([s, a]))


def thin_network(sample: dict[str, Any], width: int) -> nn.Module:
    """E's thin network of ``sample``: the same blocks and skip at ``width`` channels, no stem (its
    inputs are the protocol's ``(batch, width, 3, 3)`` crops). The evaluator gets it by import path."""
    return SmallCNN(widths=(width,), in_channels=width, stem=False).freeze({**sample, "width": width})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small", action="store_true", help="a quick check: 8 models, a reduced protocol, synthetic images"
    )
    parser.add_argument("--budget", type=int, default=None, help="models to score (default: 20; 8 with --small)")
    parser.add_argument(
        "--strategy",
        choices=("evolution", "random", "reinforce"),
        default="evolution",
        help="the TEG search algorithm (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        default=None,
        help="images: embedded, synthetic, cifar10... (default: embedded; synthetic with --small)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else (8 if args.small else 20)
    data = args.data or ("synthetic" if args.small else "embedded")
    logging.getLogger("nni").setLevel(logging.WARNING)

    model_space = SmallCNN()
    space = space_from_model_space(model_space)  # what the strategy will search: one choice per label
    n_archs = 1
    for options in space.choices().values():
        n_archs *= len(options)
    print(f"model space SmallCNN: {n_archs} architectures")
    for label, options in space.choices().items():
        print(f"  {label}: {', '.join(map(str, options))}")

    evaluator = TEGEvaluator(
        space=None,  # score the frozen models as built, whatever the model space
        data=data,
        config=SMALL_CONFIG if args.small else None,
        device=args.device,
        thin=f"{__name__}:thin_network",  # an import path keeps the evaluator serialisable (nni.trace)
    )
    if args.strategy == "evolution":
        strategy = TEGEvolution(
            space=None,
            seed=args.seed,
            budget=budget,
            population_size=4 if args.small else 10,
            tournament_size=2 if args.small else 3,
        )
    elif args.strategy == "random":
        strategy = TEGRandom(space=None, seed=args.seed, budget=budget)
    else:
        strategy = TEGReinforce(space=None, seed=args.seed, budget=budget)
    print(f"TEG {args.strategy}: {budget} models scored on {data} images, seed {args.seed}")

    config = NasExperimentConfig("sequential", "simplified")  # no training service: all in this process
    experiment = NasExperiment(model_space, evaluator, strategy, config)
    try:
        experiment.run()
        top = experiment.export_top_models(top_k=3, formatter="dict")
    finally:
        experiment.stop()

    results = strategy.results
    sums = rank_sums([score for _, score in results])
    for i, ((arch, score), rank_sum) in enumerate(zip(results, sums)):
        print(
            f"  #{i:<2} {strategy.space.format(arch)}  T={score.ntk_cond:.3g} E={score.regions:.0f} "
            f"G={score.kr_mse:.3g}  rank-sum {rank_sum:g}"
        )
    best = strategy.best()
    winner = json.dumps(strategy.sample_of(best), sort_keys=True)
    print(f"best architecture (lowest TEG rank-sum among {len(results)}): {winner}")
    print(f"top {len(top)} (export_top_models): " + "; ".join(json.dumps(sample, sort_keys=True) for sample in top))
    print("the winner, ready to train:")
    print(model_space.freeze(strategy.sample_of(best)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
