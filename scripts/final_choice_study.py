"""How well rank rules choose among good NAS-Bench-201 architectures (the study behind the final choice).

Benchmark tooling, not part of the package: it reads benchmark accuracies.

    python scripts/final_choice_study.py collect --truth T.csv --out scores.jsonl --workers 15
    python scripts/final_choice_study.py analyse --truth T.csv --scores scores.jsonl

``collect`` scores two samples with per-repeat T/E/G, no cache, one process per core:
A, the correlation benchmark's 500 whole-space architectures (sample seed 0), and B, 350 good
architectures chosen by ``cifar10_valid`` (250 of the top 10%, 100 of the next 15%, seed 123),
under several score seeds, both NTK modes and both initialisations (see ``JOBS``). ``analyse``
prints the simulation the final choice's defaults were chosen on: draw ``k`` candidates from B,
rank them with a rule averaged over score seeds, report the mean accuracy of the pick (valid, the
selection criterion, and test) over many draws, beside a random pick and the best of the ``k``.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import multiprocessing as mp
import random
import sys
import time
from collections.abc import Sequence

import numpy as np

TD, KM = "torch-default", "kaiming-normal"


def samples(truth: str) -> tuple[list[int], list[int]]:
    from teg_plugin.spaces.nb201 import NB201Space

    space = NB201Space()
    rows = list(csv.DictReader(open(truth)))
    a = [space.index(arch) for arch in space.sample_distinct(random.Random(0), 500)]
    order = sorted(rows, key=lambda r: -float(r["cifar10_valid"]))
    top, nxt = [int(r["index"]) for r in order[:1563]], [int(r["index"]) for r in order[1563:3906]]
    rng = random.Random(123)
    return a, rng.sample(top, 250) + rng.sample(nxt, 100)


def jobs(a: list[int], b: list[int]) -> list[tuple[int, str, str, int]]:
    out = [(i, TD, "frozen-bn", 0) for i in a]
    out += [(i, TD, "frozen-bn", s) for s in (0, 1, 2) for i in b]
    out += [(i, TD, "exact", 0) for i in a + b]
    out += [(i, TD, "frozen-bn", s) for s in (3, 4) for i in b]
    out += [(i, KM, "frozen-bn", s) for s in (0, 1) for i in b]
    return out


_CACHE: dict = {}


def _work(job: tuple[int, str, str, int]) -> dict:
    import torch

    from teg_plugin.config import TEGConfig
    from teg_plugin.data import load_data
    from teg_plugin.indicators.measure import measure_repeats, space_networks
    from teg_plugin.inputs import ScoringInputs
    from teg_plugin.spaces.nb201 import NB201Space

    torch.set_num_threads(1)
    index, init, ntk, seed = job
    space = _CACHE.setdefault("space", NB201Space())
    if (init, ntk, seed) not in _CACHE:
        config = TEGConfig(init=init, ntk=ntk, seed=seed).resolved(space)
        _CACHE[(init, ntk, seed)] = (config, ScoringInputs.draw(load_data("embedded"), config))
    config, inputs = _CACHE[(init, ntk, seed)]
    arch = space.canonical(space.arch_at(index))
    start = time.perf_counter()
    repeats = measure_repeats(
        space_networks(space, space.mask_of(arch), inputs, config), inputs, config, torch.device("cpu")
    )
    return {
        "index": index,
        "init": init,
        "ntk": ntk,
        "seed": seed,
        "s": time.perf_counter() - start,
        "reps": [[r.ntk_cond, r.regions, r.kr_mse, r.bad] for r in repeats],
    }


def collect(args: argparse.Namespace) -> None:
    a, b = samples(args.truth)
    with mp.get_context("fork").Pool(args.workers) as pool, open(args.out, "w") as out:
        for n, result in enumerate(pool.imap(_work, jobs(a, b)), 1):
            out.write(json.dumps(result) + "\n")
            if n % 200 == 0:
                print(n, "scored", file=sys.stderr, flush=True)


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    out = np.empty_like(values)
    for col, sign in enumerate((1, -1, 1)):  # kappa ascending, regions descending, MSE ascending
        v = sign * values[:, col]
        out[:, col] = rankdata(np.where(np.isnan(v), np.inf, v), method="average")
    return out


def analyse(args: argparse.Namespace) -> None:
    from scipy.stats import kendalltau

    rows = {int(r["index"]): r for r in csv.DictReader(open(args.truth))}
    valid = {i: float(r["cifar10_valid"]) for i, r in rows.items()}
    test = {i: float(r["cifar10_test"]) for i, r in rows.items()}
    params = {i: float(r["params_mb_cifar10"]) for i, r in rows.items()}
    scores = {}
    for line in open(args.scores):
        r = json.loads(line)
        scores[(r["index"], r["init"], r["ntk"], r["seed"])] = np.array(
            [[np.nan] * 3 if bad else [k, e, g] for k, e, g, bad in r["reps"]], float
        ).mean(0)
    a, b = samples(args.truth)
    for ntk in ("exact", "frozen-bn"):  # A: global and top-10% tau
        idx = [i for i in a if (i, TD, ntk, 0) in scores]
        values = np.array([scores[(i, TD, ntk, 0)] for i in idx])
        sums = _ranks(values).sum(1)
        sums[np.isnan(values).any(1)] = np.inf
        for name, acc in (("valid", valid), ("test", test)):
            y = np.array([acc[i] for i in idx])
            top = np.argsort(-y)[:50]
            print(
                f"A {ntk:9s} {name}: n {len(idx)}, tau {kendalltau(-sums, y)[0]:.3f}, "
                f"tau among the 50 best {kendalltau(-sums[top], y[top])[0]:.3f}"
            )
    seeds = [s for s in range(5) if all((i, TD, "frozen-bn", s) in scores for i in b)]
    x = np.stack([np.array([scores[(i, TD, "frozen-bn", s)] for i in b]) for s in seeds])  # (seeds, n, 3)
    p = np.array([params[i] for i in b])
    accs = (np.array([valid[i] for i in b]), np.array([test[i] for i in b]))
    print(f"B: {len(b)} good archs; random pick {accs[0].mean():.2f} valid / {accs[1].mean():.2f} test")

    def simulate(
        weights: tuple[float, float, float], complexity: float, use: Sequence[int], k: int, draws: int, seed: int
    ) -> np.ndarray:
        rng = np.random.default_rng(seed)
        total = np.zeros(2)
        for _ in range(draws):
            sel = rng.choice(len(b), k, replace=False)
            rank_sum = sum(_ranks(x[s, sel]) @ np.array(weights) for s in use) / len(use)
            if complexity:
                rank_sum = rank_sum + complexity * _ranks(np.stack([-p[sel]] * 3, 1))[:, 0]
            pick = sel[int(np.argmin(rank_sum))]
            total += [accs[0][pick], accs[1][pick]]
        return total / draws

    def pick_mean(
        pool: list[int], init: str, ntk: str, use: Sequence[int], k: int = 20, draws: int = 2000
    ) -> tuple[float, float]:
        """Mean (valid, test) of the rank-sum's pick among k drawn from pool, ranks averaged over `use`."""
        rng = np.random.default_rng(0)
        values = np.stack([np.array([scores[(i, init, ntk, s)] for i in pool]) for s in use])
        out = np.zeros(2)
        for _ in range(draws):
            sel = rng.choice(len(pool), k, replace=False)
            pick = pool[sel[int(np.argmin(sum(_ranks(values[j, sel]).sum(1) for j in range(len(use)))))]]
            out += [valid[pick], test[pick]]
        return tuple(out / draws)

    print("best-ranked of 20, paper's rank-sum (valid / test):")
    for init in (TD, KM):
        print(
            f"  all of B, {init}, frozen-bn, score seeds 0 and 1: %.2f / %.2f" % pick_mean(b, init, "frozen-bn", (0, 1))
        )
    for s in seeds:
        print(f"  all of B, {TD}, frozen-bn, score seed {s} alone: %.2f / %.2f" % pick_mean(b, TD, "frozen-bn", (s,)))
    top10 = b[:250]
    print("Kendall tau with cifar10_valid among the 250 of B from the top 10% (frozen-bn), by score seed:")
    for s in seeds:
        v = np.array([scores[(i, TD, "frozen-bn", s)] for i in top10])
        y = [valid[i] for i in top10]
        print(
            f"  seed {s}: T {kendalltau(-v[:, 0], y)[0]:.3f}  E {kendalltau(v[:, 1], y)[0]:.3f}  G {kendalltau(-v[:, 2], y)[0]:.3f}"
        )
    both = [i for i in b if (i, TD, "exact", 0) in scores]
    for ntk in ("exact", "frozen-bn"):
        print(
            f"  the {len(both)} of B scored both ways, {TD}, {ntk}, score seed 0: %.2f / %.2f"
            % pick_mean(both, TD, ntk, (0,))
        )
    rules = [
        ((1, 1, 1), 0),
        ((0, 1, 1), 0),
        ((0, 1, 2), 0),
        ((1, 1, 2), 0),
        ((0, 1, 1), 0.5),
        ((1, 1, 1), 1),
        ((0, 1, 0), 1),
        ((1, 0, 0), 0),
    ]
    for k in (10, 20):
        oracle = np.mean(
            [max(accs[0][s]) for s in (np.random.default_rng(j).choice(len(b), k, replace=False) for j in range(2000))]
        )
        print(f"k={k} candidates (best of them, valid: {oracle:.2f})")
        for weights, complexity in rules:
            cells = []
            for m in (1, 3, 5):
                combos = list(itertools.combinations(seeds, m))
                mean = np.mean([simulate(weights, complexity, c, k, args.draws, j) for j, c in enumerate(combos)], 0)
                cells.append(f"{m} seed(s) {mean[0]:.2f}/{mean[1]:.2f}")
            print(f"  T,E,G weights {weights}, params {complexity}: " + "; ".join(cells))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--truth", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--workers", type=int, default=2)
    c.set_defaults(run=collect)
    n = sub.add_parser("analyse")
    n.add_argument("--truth", required=True)
    n.add_argument("--scores", required=True)
    n.add_argument("--draws", type=int, default=600)
    n.set_defaults(run=analyse)
    parsed = parser.parse_args()
    parsed.run(parsed)
