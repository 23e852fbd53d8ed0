"""Bring your own search space to Optuna: TEG-NAS on a ``build_model(trial)`` you write.

``build_model`` below is an ordinary Optuna model builder for a small ResNet/MobileNet-like image
classifier: ``trial.suggest_*`` calls choose the block type (a ResNet basic block or a MobileNetV2
inverted residual), a width multiplier, the inverted blocks' expansion, and each of the three
stages' number of blocks and kernel size (3 or 5); 6,480 architectures in all.
:class:`~teg_plugin.optuna.TrialSpace` discovers those choices by running the builder, and then:

* :class:`~teg_plugin.optuna.TEGSampler` runs an aging evolution over them, guided by the TEG scores;
* the zero-cost objective scores every proposed architecture with the three training-free
  indicators (T: NTK condition number, E: linear regions, G: NTK kernel-regression error) instead
  of training it, and returns its TEG rank among the trials so far (lower is better);
* :func:`~teg_plugin.optuna.best_trial` picks the TEG-NAS winner, the lowest sum of the three ranks,
  which is then built with ``build_model(optuna.trial.FixedTrial(params))``, ready to train.

E is counted on a thin version of each architecture (``thin_model``: the same blocks with one
channel, on 3x3 crops), as TEG-NAS does for its own spaces: on the full network every image would
get its own activation pattern and E would rank nothing.

    python examples/optuna_user_space.py                # 20 architectures (under a minute on 2 CPU cores)
    python examples/optuna_user_space.py --trials 50 --storage sqlite:///user-space.db
    python examples/optuna_user_space.py --small        # a few seconds: 6 architectures, a reduced protocol

The default protocol is lighter than the paper's (one initialisation and 32-image NTK batches
instead of three and 64: scoring a network costs about the square of the batch size);
``--paper-protocol`` uses the paper's, several times slower.

The images are the CIFAR-10 sample embedded in teg-plugin (500 images), so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys

import optuna
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.optuna import TEGSampler, TrialSpace, best_trial, create_storage, zero_cost_objective
from teg_plugin.scorer import TEGScorer

#: The default: one initialisation, 32-image NTK batches (the paper's regions protocol).
DEFAULT_CONFIG = TEGConfig(repeat=1, batch_size=32)
#: ``--small``: one initialisation, 8-image NTK batches, 2 x 64 crops for the linear regions.
SMALL_CONFIG = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
#: Channels of the first stage at width multiplier 1 (the later stages double them).
BASE_WIDTH = 8
NUM_CLASSES = 10


# -- the search space: an ordinary Optuna model builder ----------------------------------------------


def suggest_choices(trial: optuna.trial.BaseTrial) -> dict[str, object]:
    """Every choice of the space. Suggested unconditionally, with fixed ranges: ``expansion`` is
    suggested even for basic blocks, which ignore it (TrialSpace has no conditional parameters)."""
    return {
        "block": trial.suggest_categorical("block", ["basic", "inverted"]),
        "width_mult": trial.suggest_float("width_mult", 0.5, 1.5, step=0.25),
        "expansion": trial.suggest_int("expansion", 2, 6, step=2),
        "blocks": [trial.suggest_int(f"blocks{stage}", 1, 3) for stage in (1, 2, 3)],
        "kernels": [trial.suggest_categorical(f"kernel{stage}", [3, 5]) for stage in (1, 2, 3)],
    }


def build_model(trial: optuna.trial.BaseTrial) -> nn.Module:
    """The classifier of ``trial``'s choices, for 3-channel images."""
    c = suggest_choices(trial)
    base = round(BASE_WIDTH * c["width_mult"])  # type: ignore[operator]
    return Net(c, in_channels=3, widths=(base, 2 * base, 4 * base), stem=True)


def thin_model(trial: optuna.trial.BaseTrial, width: int) -> nn.Module:
    """E's thin network: the same choices and blocks, ``width`` channels everywhere, no stem (its
    inputs are ``(batch, width, 3, 3)`` crops)."""
    return Net(suggest_choices(trial), in_channels=width, widths=(width, width, width), stem=False)


class Net(nn.Module):
    """A stride-2 stem, three stages of blocks (the 2nd and 3rd start with stride 2), a 1x1 head, pooling,
    classifier. The head's ReLU matters: with train-mode BatchNorm right before a linear pooling and
    classifier (an inverted block's output), every weight's gradient sums to zero over the batch,
    and the NTK is singular (T and G undefined)."""

    def __init__(self, c: dict, *, in_channels: int, widths: tuple[int, int, int], stem: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        if stem:
            layers += [nn.Conv2d(in_channels, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
            channels = widths[0]
        for stage, (width, n_blocks, kernel) in enumerate(zip(widths, c["blocks"], c["kernels"])):
            for i in range(n_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                if c["block"] == "basic":
                    layers.append(BasicBlock(channels, width, kernel, stride))
                else:
                    layers.append(InvertedResidual(channels, width, kernel, stride, c["expansion"]))
                channels = width
        layers += [nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, NUM_CLASSES)

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.classifier(self.pool(self.features(x)).flatten(1))


class BasicBlock(nn.Module):
    """ResNet's basic block: two k x k convolutions and a shortcut."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, kernel, 1, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.relu(self.body(x) + self.shortcut(x))


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, k x k depthwise convolution, 1x1 projection."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x):  # type: ignore[no-untyped-def]
        out = self.body(x)
        return x + out if self.residual else out


# -- the search ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a quick check: 6 trials and a reduced scoring protocol")
    parser.add_argument("--trials", type=int, default=None, help="architectures to score (default: 20; 6 with --small)")
    parser.add_argument(
        "--paper-protocol",
        action="store_true",
        help="score with the paper's protocol (3 initialisations, 64-image batches; slower)",
    )
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: in memory)")
    parser.add_argument(
        "--study-name", default="teg-user-space", help="study name; an existing study resumes (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the evolution (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    args = parser.parse_args(argv)
    n_trials = args.trials if args.trials is not None else (6 if args.small else 20)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # ``name`` keys the score cache: change it whenever build_model or thin_model changes.
    space = TrialSpace(build_model, name="example-resnet-mobilenet-v1", thin=thin_model)
    n_archs = 1
    for options in space.choices().values():
        n_archs *= len(options)
    print(f"search space: {len(space.choices())} parameters, {n_archs} architectures")
    for name, distribution in space.distributions().items():
        print(f"  {name:<10s} {distribution}")

    config = TEGConfig() if args.paper_protocol else SMALL_CONFIG if args.small else DEFAULT_CONFIG
    scorer = TEGScorer(space, data="embedded", config=config, device=args.device)
    sampler = TEGSampler(
        space,
        scorer,
        strategy="evolution",
        seed=args.seed,
        strategy_options={"population_size": 4 if args.small else 10, "tournament_size": 2},
    )
    study = optuna.create_study(
        study_name=args.study_name,
        storage=create_storage(args.storage) if args.storage else None,
        sampler=sampler,
        direction="minimize",  # the zero-cost objective's rank-based score: lower is better
        load_if_exists=True,
    )
    print(
        f"\nscoring {n_trials} architectures on {scorer.data.name} ({len(scorer.data)} images) on {scorer.device}",
        flush=True,
    )
    # An architecture with an undefined indicator is "bad": its trial is pruned.
    study.optimize(zero_cost_objective(space, scorer), n_trials=n_trials)
    for trial in sorted(study.trials, key=lambda t: t.number):
        print(f"  #{trial.number:<3d} {trial.state.name:<8s} {_teg(trial)}  {trial.user_attrs['arch']}")

    winner = best_trial(study)
    model = build_model(optuna.trial.FixedTrial(winner.params))  # the winner, ready to train
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\nTEG winner (lowest rank-sum): #{winner.number}  {_teg(winner)}")
    for name, value in winner.params.items():
        print(f"  {name:<10s} = {value}")
    print(f"built with build_model(FixedTrial(params)): {type(model).__name__}, {n_params:,} parameters")
    return 0


def _teg(trial: optuna.trial.FrozenTrial) -> str:
    attrs = trial.user_attrs
    if attrs.get("bad"):
        return "bad (an undefined indicator)".ljust(37)
    return f"T={attrs['ntk_cond']:<9.4g} E={attrs['regions']:<7.0f} G={attrs['kr_mse']:<9.4g}"


if __name__ == "__main__":
    sys.exit(main())
