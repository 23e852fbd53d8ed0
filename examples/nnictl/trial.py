"""One NNI trial: score the NB201 architecture NNI chose with TEG (default) or train it briefly (--train).

NNI (``nnictl create --config nb201_teg.yml``) runs this once per trial. The trial gets its
architecture with ``nni.get_next_parameter()`` (one op per edge, see ``search_space.json``) and reports
one final result::

    {"default": ..., "ntk_cond": ..., "regions": ..., "kr_mse": ..., "bad": ...}

* Without ``--train`` (zero-cost): the three TEG indicators of the architecture on the embedded
  500-image CIFAR-10 sample (``--data`` for another pool), and ``default`` = minus its normalised TEG
  rank-sum among the trials of the experiment that reported before it (higher is better; -4 for a
  bad architecture). Trials share a score cache and a result log in the experiment's folder.
* With ``--train``: the network is also trained for ``--epochs`` on 80% of the pool, the accuracy on
  the other 20% is reported after every epoch (intermediate results) and as ``default``; the TEG
  indicators are reported too, so that TEGTuner works with any trial.
* ``--proxies synflow,nwot`` adds the zero-cost proxies as ``proxy_<name>`` (``None`` where flagged):
  what a ``TEGTuner`` with a rank rule naming them (``classArgs: {rule: nwot}``) ranks by.

Run it alone (no NNI) to try it: ``python trial.py --arch '|nor_conv_3x3~0|+|...|'`` (or no
``--arch`` for a random one) prints the result instead of reporting it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Any

import nni
import torch

from teg_plugin.config import TEGConfig
from teg_plugin.data import load_data
from teg_plugin.nni.metrics import (
    RESULT_LOG,
    log_and_rank,
    proxy_metrics,
    rank_default,
    teg_metrics,
    trial_experiment_dir,
)
from teg_plugin.proxies import parse_proxy_names
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces import NB201Space
from teg_plugin.spaces.nb201 import build_network


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="embedded", help="dataset for load_data (default: %(default)s)")
    parser.add_argument("--data-root", default=None, help="where dataset files live")
    parser.add_argument(
        "--config", default="{}", help="TEGConfig fields as JSON, e.g. '{\"repeat\": 1}' (default: the paper's)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: %(default)s)")
    parser.add_argument(
        "--cache",
        default="auto",
        help="score cache path/URL; 'auto' = one in the experiment's folder, 'none' = no cache",
    )
    parser.add_argument("--arch", default=None, help="architecture to use when run without NNI")
    parser.add_argument(
        "--proxies",
        default="",
        help="zero-cost proxies to report too, comma-separated (e.g. synflow,nwot), each as proxy_<name>",
    )
    parser.add_argument("--train", action="store_true", help="also train the network briefly and report its accuracy")
    parser.add_argument("--epochs", type=int, default=2, help="--train: epochs (default: %(default)s)")
    parser.add_argument(
        "--width", type=int, default=8, help="--train: channels C of the first stage (default: %(default)s)"
    )
    parser.add_argument(
        "--cells-per-stage", type=int, default=1, help="--train: cells N per stage (default: %(default)s)"
    )
    parser.add_argument("--lr", type=float, default=0.05, help="--train: SGD learning rate (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="--train: seed of the split and the weights (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.proxies:
        try:
            args.proxies = parse_proxy_names(args.proxies)
        except ValueError as err:
            parser.error(f"--proxies: {err}")
    return args


def train(arch: Any, data: Any, args: argparse.Namespace) -> float:
    """Train the NB201 network of ``arch`` for ``args.epochs`` and return its held-out accuracy."""
    gen = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(data), generator=gen)
    split = int(0.8 * len(data))
    train_idx, test_idx = order[:split], order[split:]
    torch.manual_seed(args.seed)
    net = build_network(
        arch,
        width=args.width,
        cells_per_stage=args.cells_per_stage,
        num_classes=data.num_classes,
        in_channels=data.image_shape[0],
    )
    optimiser = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    accuracy = 0.0
    for epoch in range(args.epochs):
        net.train()
        for batch in train_idx[torch.randperm(len(train_idx), generator=gen)].split(64):
            x, y = data.batch(batch)
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimiser.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for batch in test_idx.split(256):
                x, y = data.batch(batch)
                correct += int((net(x).argmax(1) == y).sum())
        accuracy = correct / max(len(test_idx), 1)
        if nni.get_current_parameter() is not None:
            nni.report_intermediate_result(accuracy)
        print(f"epoch {epoch + 1}/{args.epochs}: held-out accuracy {accuracy:.3f}", flush=True)
    return accuracy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    space = NB201Space()
    params = nni.get_next_parameter()
    if params:
        arch = space.from_params(params)
    elif args.arch:
        arch = space.parse(args.arch)
    else:
        arch = space.sample(random.Random())
    exp_dir = trial_experiment_dir()
    cache = args.cache
    if cache == "auto":
        cache = str(exp_dir / "teg_cache.sqlite") if exp_dir is not None else None
    elif cache == "none":
        cache = None

    data = load_data(args.data, args.data_root)
    start = time.perf_counter()
    scorer = TEGScorer(space, data, TEGConfig.from_dict(json.loads(args.config)), device=args.device, cache=cache)
    score = scorer.score(arch)
    print(
        f"{space.format(arch)}: ntk_cond={score.ntk_cond:.4g} regions={score.regions:.4g} "
        f"kr_mse={score.kr_mse:.4g} bad={score.bad} ({time.perf_counter() - start:.1f} s)",
        flush=True,
    )

    if args.train:
        default = train(arch, data, args)
    elif exp_dir is not None:
        default = log_and_rank(exp_dir / RESULT_LOG, score, arch=space.format(arch))
    else:
        default = rank_default(score, [])
    result = teg_metrics(score, default)
    if args.proxies:
        result.update(proxy_metrics(scorer.proxies([arch], args.proxies)[0]))
    if params:
        nni.report_final_result(result)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
