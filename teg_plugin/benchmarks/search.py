"""Search quality: run a strategy from several seeds and look up the accuracy of what it chose.

The strategies see TEG scores only; the benchmark accuracy is read here, after each search ends.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from teg_plugin._progress import progress_bar
from teg_plugin.benchmarks.truth import read_truth
from teg_plugin.confirm import DEFAULT_CONFIRM_RULE, confirm, top_candidates
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import PAPER_RULE, RankRule
from teg_plugin.spaces import SearchSpace
from teg_plugin.strategies import make_strategy


@dataclass(frozen=True)
class SearchRun:
    """One seed's search: what it chose, what other picks among the same proposals would have
    scored, and the cost. Accuracies are CIFAR-10 test unless named valid.

    * ``test_accuracy`` / ``valid_accuracy``: the search's answer (after the final choice, if any);
    * ``before_confirmation_test_accuracy`` / ``..._valid_accuracy``: the search's own best by its
      rank rule (the answer without the final choice);
    * ``random_pick_test_accuracy``: the mean over the distinct architectures proposed (what a
      random choice among them gets on average);
    * ``largest_proposed_test_accuracy``: the proposal with the most parameters
      (:meth:`~teg_plugin.spaces.SearchSpace.complexity`), a zero-cost pick;
    * ``best_proposed_test_accuracy``: the best proposal (an oracle pick, which no strategy can see).
    """

    seed: int
    score_seed: int
    best_arch: str
    test_accuracy: float
    valid_accuracy: float
    before_confirmation_test_accuracy: float
    before_confirmation_valid_accuracy: float
    random_pick_test_accuracy: float
    largest_proposed_test_accuracy: float
    best_proposed_test_accuracy: float
    n_proposed: int
    n_distinct: int
    n_supernet_evaluations: int
    n_confirmed: int
    seconds: float
    confirmation_seconds: float


@dataclass(frozen=True)
class SearchSummary:
    strategy: str
    budget: int
    runs: list[SearchRun]
    confirm_top: int = 0
    confirm_seeds: int = 0
    confirm_rule: str = str(DEFAULT_CONFIRM_RULE)
    search_rule: str = str(PAPER_RULE)

    def mean(self, field: str) -> float:
        """The mean over seeds of a :class:`SearchRun` field."""
        return statistics.fmean(getattr(r, field) for r in self.runs)

    @property
    def test_mean(self) -> float:
        return self.mean("test_accuracy")

    @property
    def test_std(self) -> float:
        return statistics.pstdev(r.test_accuracy for r in self.runs) if len(self.runs) > 1 else 0.0

    @property
    def best_proposed_test_mean(self) -> float:
        return self.mean("best_proposed_test_accuracy")

    @property
    def seconds_mean(self) -> float:
        return self.mean("seconds")


def run_search_benchmark(
    scorer: TEGScorer,
    strategy: str,
    seeds: list[int],
    budget: int,
    truth_path: str | os.PathLike[str],
    *,
    progress: bool = False,
    vary_score_seed: bool = False,
    confirm_top: int = 0,
    confirm_seeds: int = 0,
    confirm_rule: RankRule = DEFAULT_CONFIRM_RULE,
    search_rule: RankRule = PAPER_RULE,
) -> SearchSummary:
    """Run ``strategy`` once per seed with ``budget`` proposals; report each chosen arch's accuracy.

    Seconds are wall time per seed including scoring and the final choice; architectures already in
    the scorer's cache (from an earlier seed or run) cost nothing, so report ``n_distinct`` beside it.

    Args:
        vary_score_seed: score seed ``s`` with ``scorer.with_seed(scorer.config.seed + s)`` (new
            inputs and initial weights per seed, as independent runs of the paper), instead of one
            scorer, and its cache, shared by every seed. Pruning needs it: for one scorer it is
            deterministic, so its seeds would all pick the same architecture.
        confirm_top, confirm_seeds: the final choice (:func:`teg_plugin.confirm.confirm`): the
            ``confirm_top`` best distinct proposals re-ranked over ``confirm_seeds`` further score
            seeds with ``confirm_rule``; either 0: none, the answer is the search's own best.
        search_rule: how the strategy itself ranks (its tournaments, its best, and the candidates of
            the final choice); not for prune. The zero-cost proxies it names are computed with each
            seed's scorer (:meth:`~teg_plugin.scorer.TEGScorer.proxies`: cached, once per
            architecture), the only thing besides TEG scores the strategy sees.
    """
    test = read_truth(truth_path, "cifar10_test")
    valid = read_truth(truth_path, "cifar10_valid")
    _check_coverage(scorer.space, truth_path, test, valid)
    base = scorer
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        scorer = base.with_seed(base.config.seed + seed) if vary_score_seed else base
        search = make_strategy(
            strategy,
            scorer.space,
            seed=seed,
            score_mask=scorer.score_mask_repeats,
            rule=search_rule,
            proxy_values=_proxy_values(scorer, search_rule.proxies),
        )
        scorer.show_supernet_progress = progress
        scorer.expected_supernet_evaluations = getattr(search, "planned_evaluations", None)
        bar = progress_bar(budget, progress, f"{strategy} seed {seed}", "arch")
        proposed = []
        for _ in range(budget):
            arch = search.ask()
            search.tell(arch, scorer.score(arch))
            proposed.append(arch)
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
        space = scorer.space
        before = space.format(search.best())
        best, n_confirmed, confirm_start = before, 0, time.perf_counter()
        if confirm_top and confirm_seeds:
            archs = [a for a, _ in search.history]
            candidates = top_candidates(
                space,
                archs,
                [s for _, s in search.history],
                confirm_top,
                rule=search.rule,
                extra=search.extra_values(archs),
            )
            if candidates:
                best = confirm(scorer, candidates, seeds=confirm_seeds, rule=confirm_rule, progress=progress).pick.text
                n_confirmed = len(candidates)
        confirmation_seconds = time.perf_counter() - confirm_start
        distinct = {space.format(space.canonical(a)): space.format(a) for a in proposed}
        # each distinct proposal's network is built once (first occurrence first, as max keeps the first)
        largest = max({space.format(a): a for a in proposed}.values(), key=space.complexity)
        runs.append(
            SearchRun(
                seed=seed,
                score_seed=scorer.config.seed,
                best_arch=best,
                test_accuracy=test[best],
                valid_accuracy=valid[best],
                before_confirmation_test_accuracy=test[before],
                before_confirmation_valid_accuracy=valid[before],
                random_pick_test_accuracy=statistics.fmean(test[t] for t in distinct.values()),
                largest_proposed_test_accuracy=test[space.format(largest)],
                best_proposed_test_accuracy=max(test[space.format(a)] for a in proposed),
                n_proposed=len(proposed),
                n_distinct=len(distinct),
                n_supernet_evaluations=int(getattr(search, "n_supernet_evaluations", 0)),
                n_confirmed=n_confirmed,
                seconds=time.perf_counter() - start,
                confirmation_seconds=confirmation_seconds,
            )
        )
    return SearchSummary(strategy, budget, runs, confirm_top, confirm_seeds, str(confirm_rule), str(search_rule))


def _proxy_values(scorer: TEGScorer, names: tuple[str, ...]) -> Callable[[Hashable], dict[str, float]]:
    """A strategy's ``proxy_values``: the proxies ``names`` of one architecture, by ``scorer``."""

    def values(arch: Hashable) -> dict[str, float]:
        return scorer.proxies([arch], names)[0]

    return values


def largest_network_accuracy(
    truth_path: str | os.PathLike[str], params_column: str = "params_mb_cifar10"
) -> tuple[str, float] | None:
    """The architecture with the most parameters in the table and its CIFAR-10 test accuracy (a
    zero-cost pick over the whole space), or ``None`` when the table has no ``params_column``."""
    try:
        params = read_truth(truth_path, params_column)
    except ValueError:
        return None
    test = read_truth(truth_path, "cifar10_test")
    arch = max(params, key=lambda text: (params[text], text))
    return arch, test[arch]


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
