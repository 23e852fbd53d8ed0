"""Guided architecture search with Optuna: TEG picks the cells, training judges them.

Training an architecture is expensive; scoring it with the training-free TEG indicators is cheap.
In guided mode (``steps_per_trial=k``), :class:`~teg_plugin.optuna.TEGSampler` runs ``k`` cheap
steps of a TEG-guided aging evolution between trials and proposes the best-ranked cell it found
that no trial has had yet. :class:`~teg_plugin.optuna.TEGPruner` then stops a trial *before any
training* when its cell ranks in the worse half by TEG rank-sum among the trials so far; once
training runs, a :class:`~optuna.pruners.MedianPruner` may stop a trial whose validation accuracy
lags behind the other trials' from the second epoch on.

The objective builds the NAS-Bench-201 network of the proposed cell, trains it with SGD and a
cosine schedule on the CIFAR-10 sample embedded in teg-plugin (500 images: 100 held out for
validation, the rest for training), reports the validation accuracy after every epoch and returns
the last one (maximized). Trial values never reach the search: it stays training-free.

    python examples/optuna_guided_training.py            # 8 trials, 5 epochs, C=8 N=1 (~4 min on 2 CPU cores)
    python examples/optuna_guided_training.py --trials 20 --epochs 20 --width 16
    python examples/optuna_guided_training.py --small    # under a minute: 2 trials, 1 epoch, C=4

A network trained on 400 images for a few epochs reaches only a modest accuracy; the point is the
workflow, which is the same with a full dataset (see ``teg_plugin.data.load_data``).
"""

from __future__ import annotations

import argparse
import math
import sys

import optuna
import torch
from torch import nn

from teg_plugin.config import TEGConfig
from teg_plugin.data import load_data
from teg_plugin.optuna import TEGPruner, TEGSampler, create_storage, suggest
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces.nb201 import build_network

#: ``--small``: one initialisation, 8-image NTK batches, 2 x 64 crops for the linear regions.
SMALL_CONFIG = TEGConfig(repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)
#: Images held out for validation.
N_VALID = 100
BATCH_SIZE = 32


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--small",
        action="store_true",
        help="a quick check: 2 trials, 1 epoch, width 4, N=1, 128 training images, a reduced TEG protocol",
    )
    parser.add_argument("--trials", type=int, default=None, help="architectures to train (default: 8; 2 with --small)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs per trial (default: 5; 1 with --small)"
    )
    parser.add_argument(
        "--width", type=int, default=None, help="channels C of the first stage (default: 8; 4 with --small)"
    )
    parser.add_argument("--cells", type=int, default=1, help="cells N per stage (default: %(default)s)")
    parser.add_argument(
        "--train-images",
        type=int,
        default=None,
        help=f"training images (default: all {500 - N_VALID}; 128 with --small)",
    )
    parser.add_argument(
        "--steps-per-trial",
        type=int,
        default=None,
        help="new cells the TEG search scores per trial (default: 3; 2 with --small)",
    )
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: in memory)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the search, the split and the weights (default: %(default)s)"
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: %(default)s)")
    args = parser.parse_args(argv)
    small = args.small
    n_trials = _pick(args.trials, 2 if small else 8)
    epochs = _pick(args.epochs, 1 if small else 5)
    width = _pick(args.width, 4 if small else 8)
    steps_per_trial = _pick(args.steps_per_trial, 2 if small else 3)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = load_data("embedded")
    scorer = TEGScorer("nas-bench-201", data=data, config=SMALL_CONFIG if small else TEGConfig(), device=args.device)
    space, device = scorer.space, scorer.device

    # A fixed split of the sample: the first N_VALID images of a seeded permutation validate.
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))
    n_train = min(_pick(args.train_images, 128 if small else len(data) - N_VALID), len(data) - N_VALID)
    x_valid, y_valid = (t.to(device) for t in data.batch(order[:N_VALID]))
    x_train, y_train = (t.to(device) for t in data.batch(order[N_VALID : N_VALID + n_train]))

    def accuracy(net: nn.Module) -> float:
        # NB201's BatchNorm keeps no running statistics: it normalises with those of this batch.
        with torch.no_grad():
            return float((net(x_valid).argmax(1) == y_valid).float().mean())

    def objective(trial: optuna.Trial) -> float:
        arch = suggest(space, trial)  # the sampler's proposal; its TEG scores are in trial.user_attrs
        torch.manual_seed(args.seed * 100_003 + trial.number)
        net = build_network(arch, width=width, cells_per_stage=args.cells, num_classes=data.num_classes).to(device)
        label = f"trial {trial.number:<2d} {space.format(arch)}"
        # Step 0, before training: TEGPruner decides on the cell's TEG rank alone.
        trial.report(accuracy(net), step=0)
        if trial.should_prune():
            print(f"{label}  pruned by TEG before training ({_teg(trial.user_attrs)})", flush=True)
            raise optuna.TrialPruned()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        batches = math.ceil(n_train / BATCH_SIZE)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * batches)
        shuffle = torch.Generator().manual_seed(args.seed * 100_003 + trial.number)
        accuracies = []
        for epoch in range(1, epochs + 1):
            net.train()
            perm = torch.randperm(n_train, generator=shuffle).to(device)
            for start in range(0, n_train, BATCH_SIZE):
                idx = perm[start : start + BATCH_SIZE]
                if idx.numel() < 2:  # BatchNorm needs two samples
                    continue
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(net(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
                schedule.step()
            accuracies.append(accuracy(net))
            trial.report(accuracies[-1], step=epoch)
            if trial.should_prune():  # from epoch 2 on, the MedianPruner decides
                print(f"{label}  pruned after epoch {epoch}: valid {_pct(accuracies)}", flush=True)
                raise optuna.TrialPruned()
        print(f"{label}  valid {_pct(accuracies)}  ({_teg(trial.user_attrs)})", flush=True)
        return accuracies[-1]

    study = optuna.create_study(
        study_name="teg-guided-training",
        storage=create_storage(args.storage) if args.storage else None,
        load_if_exists=True,
        direction="maximize",
        sampler=TEGSampler(space, scorer, strategy="evolution", seed=args.seed, steps_per_trial=steps_per_trial),
        pruner=TEGPruner(
            scorer,
            quantile=0.5,  # keep the better half by TEG rank-sum
            n_warmup_trials=2,  # prune nothing until two other trials have TEG scores
            training_pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
        ),
    )
    print(
        f"training {n_trials} NB201 networks (C={width}, N={args.cells}) for {epochs} epoch(s) on {n_train} "
        f"images of the embedded CIFAR-10 sample, validating on {N_VALID}, on {device}; "
        f"{steps_per_trial} TEG-scored cells per trial",
        flush=True,
    )
    study.optimize(objective, n_trials=n_trials)

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"\n{len(complete)} trained, {pruned} pruned; {scorer.n_measured} cells scored with TEG")
    if not complete:
        print("no trial finished training")
        return 1
    best = study.best_trial
    print(
        f"best trained architecture: #{best.number} {best.user_attrs['arch']}  "
        f"validation accuracy {100 * best.value:.1f}%"
    )
    return 0


def _pick(value: int | None, default: int) -> int:
    if value is not None and value < 1:
        raise SystemExit(f"error: expected a positive number, got {value}")
    return default if value is None else value


def _pct(accuracies: list[float]) -> str:
    return " ".join(f"{100 * a:.0f}%" for a in accuracies)


def _teg(attrs: dict) -> str:
    return f"T={attrs['ntk_cond']:.4g} E={attrs['regions']:.0f} G={attrs['kr_mse']:.4g}"


if __name__ == "__main__":
    sys.exit(main())
