"""Search quality: run a strategy from several seeds and look up the accuracy of what it chose.

The strategies see TEG scores only; the benchmark accuracy is read here, after each search ends.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from dataclasses import dataclass

from teg_plugin.benchmarks.truth import read_truth
from teg_plugin.scorer import TEGScorer
from teg_plugin.spaces import SearchSpace
from teg_plugin.strategies import make_strategy


@dataclass(frozen=True)
class SearchRun:
    """One seed's search: the chosen architecture, its benchmark accuracy, and the cost.

    ``best_proposed_test_accuracy`` is the highest test accuracy among every architecture the
    search proposed (an oracle pick among them, which no strategy can see): the gap to
    ``test_accuracy`` is what the TEG ranking lost choosing among what the search found.
    """

    seed: int
    score_seed: int
    best_arch: str
    test_accuracy: float
    valid_accuracy: float
    best_proposed_test_accuracy: float
    n_proposed: int
    n_distinct: int
    n_supernet_evaluations: int
    seconds: float


@dataclass(frozen=True)
class SearchSummary:
    strategy: str
    budget: int
    runs: list[SearchRun]

    @property
    def test_mean(self) -> float:
        return statistics.fmean(r.test_accuracy for r in self.runs)

    @property
    def test_std(self) -> float:
        return statistics.pstdev(r.test_accuracy for r in self.runs) if len(self.runs) > 1 else 0.0

    @property
    def best_proposed_test_mean(self) -> float:
        return statistics.fmean(r.best_proposed_test_accuracy for r in self.runs)

    @property
    def seconds_mean(self) -> float:
        return statistics.fmean(r.seconds for r in self.runs)


def run_search_benchmark(
    scorer: TEGScorer,
    strategy: str,
    seeds: list[int],
    budget: int,
    truth_path: str | os.PathLike[str],
    *,
    progress: bool = False,
    vary_score_seed: bool = False,
) -> SearchSummary:
    """Run ``strategy`` once per seed with ``budget`` proposals; report each chosen arch's accuracy.

    Seconds are wall time per seed including scoring; architectures already in the scorer's cache
    (from an earlier seed or run) cost nothing, so report ``n_distinct`` beside it.

    Args:
        vary_score_seed: score seed ``s`` with ``scorer.with_seed(scorer.config.seed + s)`` (new
            inputs and initial weights per seed, as independent runs of the paper), instead of one
            scorer, and its cache, shared by every seed. Pruning needs it: for one scorer it is
            deterministic, so its seeds would all pick the same architecture.
    """
    test = read_truth(truth_path, "cifar10_test")
    valid = read_truth(truth_path, "cifar10_valid")
    _check_coverage(scorer.space, truth_path, test, valid)
    base = scorer
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        scorer = base.with_seed(base.config.seed + seed) if vary_score_seed else base
        search = make_strategy(strategy, scorer.space, seed=seed, score_mask=scorer.score_mask_repeats)
        scorer.show_supernet_progress = progress
        scorer.expected_supernet_evaluations = getattr(search, "planned_evaluations", None)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=budget, desc=f"{strategy} seed {seed}", unit="arch")
        proposed = []
        for _ in range(budget):
            arch = search.ask()
            search.tell(arch, scorer.score(arch))
            proposed.append(arch)
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        best = scorer.space.format(search.best())
        runs.append(
            SearchRun(
                seed=seed,
                score_seed=scorer.config.seed,
                best_arch=best,
                test_accuracy=test[best],
                valid_accuracy=valid[best],
                best_proposed_test_accuracy=max(test[scorer.space.format(a)] for a in proposed),
                n_proposed=len(proposed),
                n_distinct=len({scorer.space.canonical(a) for a in proposed}),
                n_supernet_evaluations=int(getattr(search, "n_supernet_evaluations", 0)),
                seconds=time.perf_counter() - start,
            )
        )
    return SearchSummary(strategy, budget, runs)


def _check_coverage(space: SearchSpace, truth_path: str | os.PathLike[str], *tables: dict[str, float]) -> None:
    """A search may pick any architecture: refuse, before searching, a table that lacks some."""
    names = list(space.choices())
    missing = []
    for combination in itertools.product(*space.choices().values()):
        text = space.format(space.from_params(dict(zip(names, combination))))
        if any(text not in table for table in tables):
            missing.append(text)
    if missing:
        raise ValueError(
            f"{truth_path} lacks {len(missing)} {space.name} architectures (e.g. {missing[0]}); a search may pick any "
            "architecture, so bench search needs the accuracies of all of them"
        )
