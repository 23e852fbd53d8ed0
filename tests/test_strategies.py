"""TEG search strategies on a fake, deterministic scorer whose optimum is known (all nor_conv_3x3)."""

from __future__ import annotations

import ast
import math
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import teg_plugin.strategies as strategies_pkg
from teg_plugin.scores import RankRule, TEGScore, best_index, rank_sums
from teg_plugin.spaces import ChoiceSpace, DartsSpace, Mask, NB201Space
from teg_plugin.spaces.nb201 import OPS, NB201Arch
from teg_plugin.strategies import (
    STRATEGY_NAMES,
    EvolutionStrategy,
    PruningStrategy,
    RandomStrategy,
    ReinforceStrategy,
    Strategy,
    make_strategy,
)
from teg_plugin.strategies._reward import BAD_REWARD

SPACE = NB201Space()
CONV3 = "nor_conv_3x3"
OPTIMUM = NB201Arch((CONV3,) * 6)
#: The fake objective: per-op quality, summed over edges (the optimum scores 18).
WEIGHT = {"none": 0.0, "skip_connect": 1.0, "avg_pool_3x3": 1.5, "nor_conv_1x1": 2.0, CONV3: 3.0}
OUTPUT_EDGES = ("3<-0", "3<-1", "3<-2")


def fake_score_mask(mask: Mask) -> TEGScore:
    """Indicators from the share of each op on each edge (for an arch: op counts).

    Removing a good op from a supernet raises kappa and MSE and lowers regions; a cell whose output
    edges are all ``none`` is disconnected, hence ``bad``.
    """
    if all(tuple(mask[edge]) == ("none",) for edge in OUTPUT_EDGES):
        return TEGScore.flagged("disconnected cell")

    def share(options: tuple[str, ...] | list[str], op: str) -> float:
        return sum(1.0 for o in options if o == op) / len(options)

    per_edge = [tuple(options) for options in mask.values()]
    n3 = sum(share(o, CONV3) for o in per_edge)
    n1 = sum(share(o, "nor_conv_1x1") for o in per_edge)
    avg = sum(share(o, "avg_pool_3x3") for o in per_edge)
    quality = sum(sum(WEIGHT[x] for x in o) / len(o) for o in per_edge)
    # A small per-edge term makes every architecture's kappa distinct.
    edge_term = sum(0.01 * (k + 1) * (1.0 - share(o, CONV3)) for k, o in enumerate(per_edge))
    return TEGScore(
        ntk_cond=100.0 - 10.0 * n3 - 4.0 * n1 + edge_term,
        regions=5.0 * (n3 + n1) + 2.0 * n3 + avg,
        kr_mse=1.0 / (1.0 + quality),
    )


def fake_score(arch: NB201Arch) -> TEGScore:
    return fake_score_mask(SPACE.mask_of(arch))


def quality(arch: NB201Arch) -> float:
    return sum(WEIGHT[op] for op in arch.ops)


def build(name: str, seed: int = 0, score_mask: Callable[[Mask], TEGScore] = fake_score_mask) -> Strategy:
    return make_strategy(name, SPACE, seed=seed, score_mask=score_mask)


def drive(strategy: Strategy, steps: int, scorer: Callable[[NB201Arch], TEGScore] = fake_score) -> list[NB201Arch]:
    """Sequential ask/tell; returns the asked architectures."""
    asked = []
    for _ in range(steps):
        arch = strategy.ask()
        strategy.tell(arch, scorer(arch))
        asked.append(arch)
    return asked


def hamming(a: NB201Arch, b: NB201Arch) -> int:
    return sum(x != y for x, y in zip(a.ops, b.ops, strict=True))


def test_fake_scorer_optimum_is_all_conv3x3() -> None:
    scores = [fake_score(SPACE.arch_at(i)) for i in range(0, 15625, 7)] + [fake_score(OPTIMUM)]
    assert best_index(scores) == len(scores) - 1
    assert rank_sums(scores)[-1] == 3.0  # first on every indicator


# --- the shared contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_same_seed_same_asks_and_best(name: str) -> None:
    a, b = build(name, seed=5), build(name, seed=5)
    assert drive(a, 40) == drive(b, 40)
    assert a.best() == b.best()


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_different_seed_different_asks(name: str) -> None:
    # Pruning's first ask (the found arch) does not depend on the seed; what follows does.
    assert drive(build(name, seed=1), 40)[1:] != drive(build(name, seed=2), 40)[1:]


@pytest.mark.parametrize(("name", "done"), [("random", 10), ("evolution", 30), ("reinforce", 25), ("prune", 70)])
def test_replay_resumes_with_the_same_next_asks(name: str, done: int) -> None:
    original = build(name, seed=3)
    drive(original, done)
    history = original.history
    expected = drive(original, 12)

    resumed = build(name, seed=3).replay(history)
    assert resumed.history == history
    assert drive(resumed, 12) == expected
    assert resumed.best() == original.best()


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_parallel_asks_and_foreign_tells(name: str) -> None:
    strategy = build(name, seed=0)
    drive(strategy, 25)
    pending = [strategy.ask() for _ in range(4)]
    assert len(set(pending)) > 1  # parallel workers get different proposals
    for arch in reversed(pending):
        strategy.tell(arch, fake_score(arch))
    strategy.tell(OPTIMUM, fake_score(OPTIMUM))  # never asked, e.g. from another worker
    drive(strategy, 5)
    assert len(strategy.history) == 35
    assert strategy.best() == OPTIMUM


def flaky_scorer(arch: NB201Arch) -> TEGScore:
    """Bad for about half the space (and for half of the pruning's final small supernet)."""
    if arch.ops[0] in ("none", "avg_pool_3x3") or arch.ops[5] == "nor_conv_1x1":
        return TEGScore.flagged("fake failure")
    return fake_score(arch)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_bad_scores_never_crash_and_rank_last(name: str) -> None:
    strategy = build(name, seed=0)
    drive(strategy, 40, flaky_scorer)
    assert any(score.bad for _, score in strategy.history)
    assert not flaky_scorer(strategy.best()).bad


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_only_bad_scores_still_work(name: str) -> None:
    strategy = build(name, seed=0)
    drive(strategy, 30, lambda arch: TEGScore.flagged("always"))
    assert strategy.best() == strategy.history[0][0]
    strategy.ask()


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_best_ranks_each_distinct_architecture_once(name: str) -> None:
    a, b, c = SPACE.arch_at(0), SPACE.arch_at(1), SPACE.arch_at(2)
    scores = {a: TEGScore(1, 1, 1), b: TEGScore(2, 3, 2), c: TEGScore(3, 2, 3)}
    strategy = build(name, seed=0)
    for arch in (a, b, c, c):
        strategy.tell(arch, scores[arch])
    # Ranked as a multiset (c twice), b would win; among {a, b, c}, a ties b and was told first.
    assert best_index([score for _, score in strategy.history]) == 1
    assert strategy.best() == a


def test_best_before_any_tell_and_wrong_score_type() -> None:
    strategy = RandomStrategy(SPACE)
    with pytest.raises(ValueError, match="no architecture"):
        strategy.best()
    with pytest.raises(TypeError, match="TEGScore"):
        strategy.tell(OPTIMUM, 1.0)  # type: ignore[arg-type]
    assert not strategy.is_finished()


def test_guided_strategies_beat_random_on_the_fake_objective() -> None:
    budget, seeds = 100, range(4)
    mean_quality = {
        name: statistics.mean(quality(_run_best(name, seed, budget)) for seed in seeds) for name in STRATEGY_NAMES
    }
    # Margins are far below the observed gaps (random ~15, evolution ~17.5, reinforce ~16.5).
    assert mean_quality["evolution"] >= mean_quality["random"] + 1.0
    assert mean_quality["reinforce"] >= mean_quality["random"] + 0.5
    assert mean_quality["prune"] == quality(OPTIMUM)


def _run_best(name: str, seed: int, budget: int) -> NB201Arch:
    strategy = build(name, seed=seed)
    drive(strategy, budget)
    return strategy.best()


# --- random ------------------------------------------------------------------------------------------


def test_random_does_not_repeat_told_archs() -> None:
    strategy = RandomStrategy(SPACE, seed=0)
    asked = drive(strategy, 300)
    assert len(set(asked)) == 300


# --- evolution ---------------------------------------------------------------------------------------


def test_evolution_defaults_keep_the_paper_ratio() -> None:
    evo = EvolutionStrategy(SPACE)
    assert (evo.population_size, evo.tournament_size) == (20, 5)
    assert evo.tournament_size / evo.population_size == 64 / 256


@pytest.mark.parametrize(("population", "tournament"), [(0, 1), (4, 0), (4, 5)])
def test_evolution_rejects_bad_sizes(population: int, tournament: int) -> None:
    with pytest.raises(ValueError):
        EvolutionStrategy(SPACE, population_size=population, tournament_size=tournament)


def test_evolution_keeps_population_size_and_ages_out_the_oldest() -> None:
    evo = EvolutionStrategy(SPACE, seed=0, population_size=4, tournament_size=2)
    evo.tell(OPTIMUM, fake_score(OPTIMUM))
    for step in range(3):
        arch = evo.ask()
        assert evo.last_tournament is None  # random warm-up
        evo.tell(arch, fake_score(arch))
        assert len(evo.population) == step + 2
    told = [arch for arch, _ in evo.history]
    for _ in range(5):
        child = evo.ask()
        assert evo.last_tournament is not None and evo.last_tournament.child == child
        evo.tell(child, fake_score(child))
        told.append(child)
        assert [arch for arch, _ in evo.population] == told[-4:]
    # The best of the whole history counts, even after it died.
    assert evo.best() == OPTIMUM and OPTIMUM not in [a for a, _ in evo.population]


def _spread_archs(count: int) -> list[NB201Arch]:
    """``count`` cells at pairwise Hamming distance >= 3 (so a child has exactly one possible parent)."""
    archs: list[NB201Arch] = []
    for index in range(15625):
        arch = SPACE.arch_at(index)
        if all(hamming(arch, other) >= 3 for other in archs):
            archs.append(arch)
            if len(archs) == count:
                return archs
    raise AssertionError("not enough spread archs")


def test_tournament_parent_is_the_rank_sum_winner_within_the_tournament() -> None:
    a, b, c, d = _spread_archs(4)
    scores = {
        # Globally B has the lowest rank-sum (5 vs A's 6); between A and B alone, A wins (4 vs 5).
        a: TEGScore(ntk_cond=1.0, regions=100.0, kr_mse=0.9),
        b: TEGScore(ntk_cond=2.0, regions=99.0, kr_mse=0.1),
        c: TEGScore(ntk_cond=3.0, regions=98.0, kr_mse=0.2),
        d: TEGScore(ntk_cond=4.0, regions=97.0, kr_mse=0.3),
    }
    assert best_index(list(scores.values())) == 1
    evo = EvolutionStrategy(SPACE, seed=0, population_size=4, tournament_size=2)
    evo.replay(scores.items())
    seen_ab = False
    for _ in range(60):  # parallel asks: a different tournament each time
        child = evo.ask()
        tournament = evo.last_tournament
        assert tournament is not None and len(tournament.members) == 2
        members = [arch for arch, _ in tournament.members]
        assert len(set(members)) == 2  # drawn without replacement
        winner = members[best_index([scores[m] for m in members])]
        assert tournament.parent == winner
        assert hamming(child, winner) == 1
        if set(members) == {a, b}:
            seen_ab = True
            assert tournament.parent == a
    assert seen_ab


def test_bad_members_never_win_a_tournament_unless_all_are_bad() -> None:
    good, bad1, bad2 = _spread_archs(3)
    evo = EvolutionStrategy(SPACE, seed=0, population_size=3, tournament_size=3)
    evo.replay([(bad1, TEGScore.flagged("x")), (good, fake_score(good)), (bad2, TEGScore.flagged("y"))])
    for _ in range(10):
        evo.ask()
        assert evo.last_tournament is not None and evo.last_tournament.parent == good
    all_bad = EvolutionStrategy(SPACE, seed=0, population_size=2, tournament_size=2)
    all_bad.replay([(bad1, TEGScore.flagged("x")), (bad2, TEGScore.flagged("y"))])
    assert hamming(all_bad.ask(), all_bad.last_tournament.parent) == 1  # type: ignore[union-attr]


# --- REINFORCE ---------------------------------------------------------------------------------------


def test_reinforce_reward_on_a_hand_computed_example() -> None:
    rl = ReinforceStrategy(SPACE, seed=0)
    rl.tell(OPTIMUM, TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.5))
    rl.tell(OPTIMUM, TEGScore(ntk_cond=8.0, regions=110.0, kr_mse=0.5))
    rl.tell(OPTIMUM, TEGScore(ntk_cond=12.0, regions=105.0, kr_mse=0.4))
    rl.tell(OPTIMUM, TEGScore.flagged("nan"))
    rl.tell(OPTIMUM, TEGScore(ntk_cond=12.0, regions=105.0, kr_mse=0.4))
    expected = [
        0.0,  # first tell
        # kappa: -(8-10)/range(10,8)=1; regions: (110-100)/10=1; MSE range 0: skipped
        2.0,
        # kappa: -(12-8)/4=-1; regions: (105-110)/10=-0.5; MSE: -(0.4-0.5)/0.1=1
        -0.5,
        BAD_REWARD,
        # compared with the last good score (the bad one enters neither the ranges nor "previous")
        0.0,
    ]
    assert rl.rewards == pytest.approx(expected)
    assert BAD_REWARD == -3.0


def test_reinforce_range_uses_the_last_ten_values() -> None:
    rl = ReinforceStrategy(SPACE, seed=0)
    kappas = [0.0, 100.0] + [50.0] * 9 + [60.0]
    for kappa in kappas:
        rl.tell(OPTIMUM, TEGScore(ntk_cond=kappa, regions=1.0, kr_mse=1.0))
    # The last 10 values are nine 50s and the 60 (the 0 and the 100 are out): range 10.
    assert rl.rewards[-1] == pytest.approx(-(60.0 - 50.0) / 10.0)
    assert rl.rewards[2] == pytest.approx(-(50.0 - 100.0) / 100.0)


def test_reinforce_moves_probability_towards_rewarded_options() -> None:
    rl = ReinforceStrategy(SPACE, seed=0)
    assert all(p == pytest.approx(0.2) for probs in rl.probabilities.values() for p in probs)
    poor = NB201Arch(("skip_connect",) * 6)
    rl.tell(poor, fake_score(poor))
    before = rl.probabilities
    rl.tell(OPTIMUM, fake_score(OPTIMUM))  # an improvement: positive advantage
    after = rl.probabilities
    conv3 = OPS.index(CONV3)
    for edge in after:
        assert after[edge][conv3] > before[edge][conv3]
        assert all(after[edge][i] < before[edge][i] for i in range(len(OPS)) if i != conv3)
    for _ in range(15):
        rl.tell(poor, fake_score(poor))
        rl.tell(OPTIMUM, fake_score(OPTIMUM))
    for probs in rl.probabilities.values():
        assert max(probs) == probs[conv3] > 0.4
    assert len(rl.policy_log) == len(rl.history) + 1
    assert rl.policy_log[0]["1<-0"] == pytest.approx((0.2,) * 5)
    assert rl.policy_log[-1] == rl.probabilities


def test_reinforce_search_learns_the_fake_optimum_ops() -> None:
    rl = ReinforceStrategy(SPACE, seed=0)
    drive(rl, 150)
    conv3 = OPS.index(CONV3)
    mean_conv3 = statistics.mean(probs[conv3] for probs in rl.probabilities.values())
    assert mean_conv3 > 0.35


# --- pruning -----------------------------------------------------------------------------------------


def test_pruning_drops_one_option_per_choice_per_round_and_finds_the_optimum() -> None:
    calls: list[dict[str, tuple[str, ...]]] = []

    def counting(mask: Mask) -> TEGScore:
        calls.append({k: tuple(v) for k, v in mask.items()})
        return fake_score_mask(mask)

    prune = PruningStrategy(SPACE, counting, seed=0, exclude_options=())
    assert prune.planned_evaluations == 4 + 6 * (5 + 4 + 3 + 2)
    assert prune.n_supernet_evaluations == 0 and not calls  # lazy
    found = prune.run()
    assert found == OPTIMUM
    rounds = prune.rounds
    assert [len(r.mask["1<-0"]) for r in rounds] == [5, 4, 3, 2]
    assert rounds[0].mask == SPACE.full_mask()
    for current, following in zip(rounds, [*rounds[1:], None]):
        assert set(current.dropped) == set(current.mask)
        for edge, options in current.mask.items():
            kept = tuple(o for o in options if o != current.dropped[edge])
            assert len(kept) == len(options) - 1
            if following is not None:
                assert following.mask[edge] == kept
        assert len(current.candidates) == sum(len(o) for o in current.mask.values())
    assert [r.dropped["1<-0"] for r in rounds] == ["none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1"]
    assert prune.n_supernet_evaluations == len(calls) == 4 + 6 * (5 + 4 + 3 + 2)
    assert prune.run() == found and prune.n_supernet_evaluations == len(calls)  # prunes once


def test_pruning_deltas_and_ranks() -> None:
    prune = PruningStrategy(SPACE, fake_score_mask, exclude_options=())
    prune.run()
    first = prune.rounds[0]
    by_option = {(c.choice, c.option): c for c in first.candidates}
    conv3, none = by_option[("1<-0", CONV3)], by_option[("1<-0", "none")]
    assert all(delta > 0 for delta in conv3.deltas.values())  # removing the best op hurts
    assert all(delta < 0 for delta in none.deltas.values())  # removing "none" helps
    assert conv3.rank_sum < none.rank_sum
    base = first.baseline
    # One repeat: the relative changes of the scores.
    assert conv3.deltas["ntk_cond"] == pytest.approx((conv3.score.ntk_cond - base.ntk_cond) / base.ntk_cond)
    assert conv3.deltas["regions"] == pytest.approx((base.regions - conv3.score.regions) / base.regions)
    assert conv3.deltas["kr_mse"] == pytest.approx((conv3.score.kr_mse - base.kr_mse) / base.kr_mse)
    # Ranks are over all candidates of the round (1 = largest delta).
    deltas = [c.deltas["ntk_cond"] for c in first.candidates]
    top = first.candidates[deltas.index(max(deltas))]
    assert top.ranks["ntk_cond"] == 1.0
    assert sum(c.rank_sum for c in first.candidates) == pytest.approx(3 * sum(range(1, 31)))


def test_pruning_compares_repeat_by_repeat_as_tenas() -> None:
    # Two repeats of very different scale. Removing nor_conv_1x1 from edge 1<-0 raises kappa by 20%
    # in the large repeat; removing skip_connect raises it by 50% in the small one. The mean kappa
    # rises more for nor_conv_1x1 (+10 vs +0.25), but TE-NAS's repeat-wise relative change (0.10 vs
    # 0.25) rates skip_connect more important.
    def score_mask(mask: Mask) -> tuple[TEGScore, TEGScore]:
        big, small = 100.0, 1.0
        if "nor_conv_1x1" not in mask["1<-0"]:
            big = 120.0
        if "skip_connect" not in mask["1<-0"]:
            small = 1.5
        return TEGScore(big, 10.0, 1.0), TEGScore(small, 10.0, 1.0)

    prune = PruningStrategy(SPACE, score_mask)
    prune.run()
    first = prune.rounds[0]
    by_option = {(c.choice, c.option): c for c in first.candidates}
    conv1, skip = by_option[("1<-0", "nor_conv_1x1")], by_option[("1<-0", "skip_connect")]
    assert conv1.deltas["ntk_cond"] == pytest.approx(0.1) and skip.deltas["ntk_cond"] == pytest.approx(0.25)
    assert skip.ranks["ntk_cond"] == 1.0 and conv1.ranks["ntk_cond"] == 2.0
    assert conv1.score.ntk_cond == pytest.approx(60.5) and first.baseline.ntk_cond == pytest.approx(50.5)
    with pytest.raises(TypeError, match="TEGScore or a non-empty sequence"):
        PruningStrategy(SPACE, lambda mask: ()).run()


def test_pruning_keeps_an_option_whose_removal_is_bad() -> None:
    def breaks_without_none_on_first_edge(mask: Mask) -> TEGScore:
        if "none" not in mask["1<-0"]:
            return TEGScore.flagged("removing none broke it")
        return fake_score_mask(mask)

    prune = PruningStrategy(SPACE, breaks_without_none_on_first_edge, exclude_options=())
    found = prune.run()
    assert found.ops[0] == "none"
    assert found.ops[1:] == (CONV3,) * 5
    for r in prune.rounds:
        bad = [c for c in r.candidates if c.bad]
        assert [(c.choice, c.option) for c in bad] == [("1<-0", "none")]
        assert bad[0].rank_sum == -math.inf and math.isnan(bad[0].deltas["ntk_cond"])


@pytest.mark.parametrize(
    "scorer",
    [lambda mask: TEGScore(1.0, 1.0, 1.0), lambda mask: TEGScore.flagged("always")],
    ids=["all-tied", "all-bad"],
)
def test_pruning_ties_drop_the_last_option_in_space_order(scorer: Callable[[Mask], TEGScore]) -> None:
    prune = PruningStrategy(SPACE, scorer, exclude_options=())
    assert prune.run() == NB201Arch(("none",) * 6)
    assert [r.dropped["3<-2"] for r in prune.rounds] == list(reversed(OPS[1:]))


def test_pruning_starts_without_none_as_tenas_does() -> None:
    calls: list[Mask] = []

    def counting(mask: Mask) -> TEGScore:
        calls.append(dict(mask))
        return fake_score_mask(mask)

    prune = PruningStrategy(SPACE, counting)
    found = prune.run()
    assert "none" not in found.ops
    assert all("none" not in options for mask in calls for options in mask.values())
    assert prune.rounds[0].mask == {edge: OPS[1:] for edge in SPACE.full_mask()}
    assert prune.n_supernet_evaluations == len(calls) == prune.planned_evaluations == 3 + 6 * (4 + 3 + 2)
    # An exclusion that would empty a choice leaves that choice whole.
    odd = PruningStrategy(SPACE, fake_score_mask, exclude_options={"nor_conv_3x3"})
    odd.run()
    assert odd.rounds[0].mask["1<-0"] == ("none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3")
    everything = PruningStrategy(SPACE, fake_score_mask, exclude_options=set(OPS))
    everything.run()
    assert everything.rounds[0].mask == SPACE.full_mask()
    with pytest.raises(TypeError, match="collection of option names"):
        PruningStrategy(SPACE, fake_score_mask, exclude_options="none")


def test_pruning_asks_found_then_small_supernet_then_mutations() -> None:
    prune = PruningStrategy(SPACE, fake_score_mask, seed=0)
    asked = drive(prune, 64 + 10)
    assert asked[0] == OPTIMUM
    small = prune.rounds[-1].mask
    assert all(len(options) == 2 for options in small.values())
    supernet_archs = asked[1:64]
    assert len(set(supernet_archs)) == 63 and OPTIMUM not in supernet_archs
    assert all(op in small[edge] for arch in supernet_archs for edge, op in SPACE.to_params(arch).items())
    assert supernet_archs != sorted(supernet_archs)  # a shuffled order
    assert all(hamming(arch, OPTIMUM) == 1 for arch in asked[64:])  # mutations of the best
    assert prune.best() == OPTIMUM
    assert not prune.is_finished()


# --- factory -----------------------------------------------------------------------------------------


def test_make_strategy_names_and_options() -> None:
    assert isinstance(make_strategy("random", SPACE), RandomStrategy)
    evo = make_strategy("Evolution", SPACE, seed=4, population_size=8, tournament_size=2)
    assert isinstance(evo, EvolutionStrategy) and evo.population_size == 8 and evo.seed == 4
    assert isinstance(make_strategy("reinforce", SPACE, learning_rate=0.1), ReinforceStrategy)
    assert isinstance(make_strategy("prune", SPACE, score_mask=fake_score_mask), PruningStrategy)
    with pytest.raises(ValueError, match="unknown strategy 'bayes'.*random, evolution, reinforce, prune"):
        make_strategy("bayes", SPACE)
    with pytest.raises(ValueError, match="score_mask"):
        make_strategy("prune", SPACE)
    with pytest.raises(TypeError):
        make_strategy("random", SPACE, population_size=3)


# --- search never peeks at accuracies ------------------------------------------------------------------


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_search_never_loads_benchmark_accuracies(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from teg_plugin.benchmarks import nb201_accuracy

    def forbidden() -> None:
        raise AssertionError("a search strategy loaded benchmark accuracies")

    monkeypatch.setattr(nb201_accuracy, "_load_arrays", forbidden)
    with pytest.raises(AssertionError):
        nb201_accuracy.NB201Accuracy.load()  # the guard is live
    strategy = build(name, seed=0)
    drive(strategy, 30)
    strategy.best()


def test_importing_strategies_imports_no_benchmark_proxies_torch_or_framework() -> None:
    code = (
        "import sys, teg_plugin.strategies\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('optuna', 'nni')"
        " or m.startswith(('teg_plugin.benchmarks', 'teg_plugin.proxies')) or m == 'torch')\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_strategies_source_imports_no_torch_optuna_nni_proxies_or_benchmarks() -> None:
    forbidden = ("torch", "optuna", "nni", "teg_plugin.benchmarks", "teg_plugin.proxies")
    files = sorted(Path(strategies_pkg.__file__).parent.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for module in names:
                assert not any(module == f or module.startswith(f + ".") for f in forbidden), (path.name, module)


class _OneNodeSpace(ChoiceSpace):
    """A node fed by 3 candidate edges, of which it keeps 2, each with op ``a`` or ``b``: the
    smallest space with :meth:`mask_groups`, for the pruning strategy's edge phase."""

    EDGES = ("e0", "e1", "e2")

    def __init__(self) -> None:
        super().__init__("one-node", {edge: ("a", "b", "off") for edge in self.EDGES}, lambda c: None)

    def full_mask(self) -> dict[str, tuple[str, ...]]:
        return {edge: ("a", "b") for edge in self.EDGES}

    def mask_groups(self) -> list[tuple[tuple[str, ...], int]]:
        return [(self.EDGES, 2)]

    def arch_from_mask(self, mask: Mask):  # type: ignore[no-untyped-def]
        active = [edge for edge in self.EDGES if mask[edge]]
        if len(active) != 2 or any(len(mask[edge]) != 1 for edge in active):
            raise ValueError(f"not an architecture: {dict(mask)}")
        return self.from_params({edge: mask[edge][0] if mask[edge] else "off" for edge in self.EDGES})


def test_pruning_edge_phase_keeps_the_most_important_keys_of_each_group() -> None:
    # Quality: op b beats a everywhere; edge e1 is worth most, then e2, then e0.
    worth = {"e0": 1.0, "e1": 3.0, "e2": 2.0}

    def score_mask(mask: Mask) -> TEGScore:
        q = sum(
            worth[e] * sum(2.0 if o == "b" else 1.0 for o in opts) / max(len(opts), 1)
            for e, opts in mask.items()
            if opts
        )
        return TEGScore(ntk_cond=100.0 - q, regions=q, kr_mse=1.0 / (1.0 + q))

    space = _OneNodeSpace()
    prune = PruningStrategy(space, score_mask)
    found = prune.run()
    assert dict(found) == {"e0": "off", "e1": "b", "e2": "b"}
    op_round, edge_round = prune.rounds
    assert op_round.dropped == {"e0": "a", "e1": "a", "e2": "a"}
    assert edge_round.mask == {"e0": ("b",), "e1": ("b",), "e2": ("b",)}
    assert edge_round.dropped == {"e0": "b"} and len(edge_round.candidates) == 3
    # 1 + 6 in the op round, 1 + 3 in the edge phase.
    assert prune.n_supernet_evaluations == prune.planned_evaluations == 11


# --- input validation: one clear error at the API boundary, and no half-updated state ---------------

SCORE = TEGScore(ntk_cond=10.0, regions=50.0, kr_mse=0.1)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"learning_rate": math.nan}, ValueError, "learning_rate must be a finite number > 0"),
        ({"learning_rate": math.inf}, ValueError, "learning_rate"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": "0.1"}, TypeError, "learning_rate"),
        ({"betas": (2, 3)}, ValueError, r"betas\[0\] must be a finite number >= 0.0 and < 1.0, got 2"),
        ({"betas": (0.9, 1.0)}, ValueError, r"betas\[1\]"),
        ({"betas": (0.9,)}, TypeError, "betas must be a pair"),
        ({"eps": 0}, ValueError, "eps must be a finite number > 0"),
        ({"eps": math.nan}, ValueError, "eps"),
        ({"bad_reward": math.nan}, ValueError, "bad_reward must be a finite number"),
        ({"bad_reward": -math.inf}, ValueError, "bad_reward"),
        ({"baseline_momentum": "0.9"}, TypeError, "baseline_momentum"),
        ({"window": 1.5}, TypeError, "window must be an int"),
        ({"window": "3"}, TypeError, "window must be an int"),
    ],
)
def test_reinforce_refuses_hyperparameters_that_break_the_policy(
    options: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        ReinforceStrategy(SPACE, **options)  # type: ignore[arg-type]


def test_reinforce_tell_that_would_make_the_policy_non_finite_raises_and_changes_nothing() -> None:
    rl = ReinforceStrategy(SPACE, seed=0, learning_rate=1e308)  # finite, but the logits overflow
    for step in range(10):
        arch, score = rl.ask(), TEGScore(ntk_cond=10.0 + step, regions=50.0 - step, kr_mse=0.1)
        before = (rl.history, rl.rewards, rl.policy_log, rl.baseline, rl.probabilities)
        try:
            rl.tell(arch, score)
        except ValueError as exc:
            assert "non-finite" in str(exc) and "learning_rate=1e+308" in str(exc)
            break
    else:
        pytest.fail("the overflowing policy was accepted")
    assert (rl.history, rl.rewards, rl.policy_log, rl.baseline, rl.probabilities) == before
    assert all(math.isfinite(p) for probs in rl.probabilities.values() for p in probs)
    rl.ask()  # still proposes from the last finite policy


def test_reinforce_ask_refuses_a_non_finite_policy() -> None:
    rl = ReinforceStrategy(SPACE, seed=0)
    rl._logits[0] = math.nan  # cannot happen through tell (see above); ask must not sample from it
    with pytest.raises(RuntimeError, match="policy is not finite"):
        rl.ask()


@pytest.mark.parametrize("name", STRATEGY_NAMES)
@pytest.mark.parametrize(
    ("arch", "match"),
    [
        (SPACE.format(OPTIMUM), r"got str '\|nor_conv_3x3.*; parse text with strategy.space.parse"),
        (None, "tell expects a nas-bench-201 architecture \\(NB201Arch\\), got NoneType"),
        (DartsSpace().sample(random.Random(0)), "got DartsGenotype"),
        (tuple(OPTIMUM.ops), "got tuple"),
    ],
    ids=["text", "None", "darts-genotype", "tuple"],
)
def test_tell_refuses_what_is_not_an_architecture_of_the_space_and_records_nothing(
    name: str, arch: object, match: str
) -> None:
    strategy = build(name)
    with pytest.raises(TypeError, match=match):
        strategy.tell(arch, SCORE)  # type: ignore[arg-type]
    assert strategy.history == []
    if isinstance(strategy, ReinforceStrategy):
        assert strategy.rewards == [] and len(strategy.policy_log) == 1
    strategy.tell(strategy.ask(), SCORE)  # the strategy still works
    assert strategy.best() == strategy.history[0][0]


def test_tell_refuses_an_architecture_of_the_same_type_from_another_space() -> None:
    space = ChoiceSpace("ab", {"a": (1, 2), "b": ("x", "y")}, lambda c: None)
    other = ChoiceSpace("ac", {"a": (1, 2), "c": ("x", "y")}, lambda c: None)
    strategy = RandomStrategy(space)
    with pytest.raises(ValueError, match="is not an architecture of ab: .*unexpected key.*c"):
        strategy.tell(other.sample(random.Random(0)), SCORE)
    assert strategy.history == []


def test_replay_checks_every_entry_before_telling_any() -> None:
    strategy = EvolutionStrategy(SPACE, population_size=2, tournament_size=1)
    with pytest.raises(TypeError, match="replay entry 1: tell expects a nas-bench-201 architecture"):
        strategy.replay([(OPTIMUM, SCORE), (SPACE.format(OPTIMUM), SCORE)])
    with pytest.raises(TypeError, match="replay entry 0: tell expects a TEGScore"):
        strategy.replay([(OPTIMUM, 1.0)])
    with pytest.raises(TypeError, match=r"\(arch, score\) pairs; entry 0"):
        strategy.replay([OPTIMUM])
    assert strategy.history == [] and strategy.population == ()


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: make_strategy(None, SPACE), TypeError, "strategy name must be a str, one of random"),
        (lambda: make_strategy(3, SPACE), TypeError, "strategy name must be a str"),
        (lambda: EvolutionStrategy(SPACE, population_size="3"), TypeError, "population_size must be an int, got '3'"),
        (lambda: EvolutionStrategy(SPACE, population_size=None), TypeError, "population_size must be an int"),
        (lambda: EvolutionStrategy(SPACE, population_size=8.0), TypeError, "population_size must be an int"),
        (lambda: EvolutionStrategy(SPACE, tournament_size=True), TypeError, "tournament_size must be an int"),
        (lambda: EvolutionStrategy(SPACE, seed=1.7), TypeError, "seed must be an int, got 1.7"),
        (lambda: RandomStrategy(SPACE, seed="1"), TypeError, "seed must be an int"),
        (lambda: ReinforceStrategy(SPACE, seed=True), TypeError, "seed must be an int"),
        (lambda: RandomStrategy(SPACE, max_redraws=1.5), TypeError, "max_redraws must be an int"),
        (lambda: RandomStrategy(SPACE, max_redraws=None), TypeError, "max_redraws must be an int"),
        (lambda: RandomStrategy(None), TypeError, "space must be a SearchSpace"),
        (lambda: make_strategy("evolution", "nas-bench-201"), TypeError, "space must be a SearchSpace"),
        (lambda: PruningStrategy(SPACE, fake_score_mask, seed=2.5), TypeError, "seed must be an int"),
        (lambda: PruningStrategy(SPACE, fake_score_mask, exclude_options=1), TypeError, "collection of option names"),
    ],
)
def test_constructors_refuse_arguments_of_the_wrong_type(
    make: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make()


def test_int_arguments_take_numpy_integers_but_not_bools() -> None:
    evo = EvolutionStrategy(SPACE, seed=np.int64(3), population_size=np.int64(4), tournament_size=np.int32(2))
    assert (evo.seed, evo.population_size, evo.tournament_size) == (3, 4, 2) and type(evo.seed) is int
    with pytest.raises(TypeError, match="population_size must be an int, got True"):
        EvolutionStrategy(SPACE, population_size=True, tournament_size=1)


@pytest.mark.parametrize("excluded", [("nonee",), ["none", "conv3x3"], [None]])
def test_pruning_refuses_exclude_options_that_are_not_options_of_the_space(excluded: list[object]) -> None:
    match = "exclude_options: not an option of nas-bench-201: .*; its options: 'none', 'skip_connect'"
    with pytest.raises(ValueError, match=match):
        PruningStrategy(SPACE, fake_score_mask, exclude_options=excluded)  # type: ignore[arg-type]


def test_pruning_refuses_an_explicit_none_where_the_space_has_no_such_option() -> None:
    space = _OneNodeSpace()  # the default excludes "none" only where the space has it (not here)
    with pytest.raises(ValueError, match="not an option of one-node: 'none'; its options: 'a', 'b'"):
        PruningStrategy(space, fake_score_mask, exclude_options=("none",))


def test_a_rank_rule_with_a_complexity_term_decides_tournaments_and_best() -> None:
    """Two archs with equal scores: under the paper's rule the first told wins; with ``params`` the
    one with more parameters (3x3 convolutions everywhere) wins, in tournaments and in best()."""
    small = SPACE.parse(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    large = OPTIMUM
    assert SPACE.complexity(large) > SPACE.complexity(small)
    same = TEGScore(ntk_cond=5.0, regions=50.0, kr_mse=0.5)
    rule = RankRule.parse("ntk_cond,regions,kr_mse,params")
    paper = EvolutionStrategy(SPACE, seed=0, population_size=2, tournament_size=2).replay(
        [(small, same), (large, same)]
    )
    ruled = EvolutionStrategy(SPACE, seed=0, population_size=2, tournament_size=2, rule=rule)
    ruled.replay([(small, same), (large, same)])
    assert paper.best() == small and ruled.best() == large
    paper.ask()
    ruled.ask()
    assert paper.last_tournament is not None and paper.last_tournament.parent == small
    assert ruled.last_tournament is not None and ruled.last_tournament.parent == large
    for name in ("random", "reinforce"):
        strategy = make_strategy(name, SPACE, seed=0, rule=rule).replay([(small, same), (large, same)])
        assert strategy.rule == rule and strategy.best() == large


def _fake_nwot(arch: NB201Arch) -> float:
    """A fake proxy that prefers skip connections (the opposite of the fake TEG scores)."""
    return float(sum(op == "skip_connect" for op in arch.ops)) + 0.01 * sum(op == "nor_conv_1x1" for op in arch.ops)


class _CountingProxies:
    """``proxy_values`` of a fake ``nwot`` (NaN for an all-``none`` cell), counting its calls per arch."""

    def __init__(self) -> None:
        self.calls: dict[NB201Arch, int] = {}

    def __call__(self, arch: NB201Arch) -> dict[str, float]:
        self.calls[arch] = self.calls.get(arch, 0) + 1
        return {"nwot": math.nan if all(op == "none" for op in arch.ops) else _fake_nwot(arch), "other": 1.0}


@pytest.mark.parametrize("name", ["random", "evolution", "reinforce"])
def test_a_proxy_rule_picks_the_arch_with_the_best_proxy_value(name: str) -> None:
    proxies = _CountingProxies()
    options = {"population_size": 6, "tournament_size": 3} if name == "evolution" else {}
    strategy = make_strategy(name, SPACE, seed=1, rule=RankRule.parse("nwot"), proxy_values=proxies, **options)
    paper = make_strategy(name, SPACE, seed=1, **options)
    history = []
    for _ in range(25):
        arch = strategy.ask()
        score = fake_score(arch)
        strategy.tell(arch, score)
        paper.tell(arch, score)
        history.append((arch, score))
    told = {arch for arch, _ in history}
    good = [arch for arch, score in history if not score.bad]
    best = max(good, key=_fake_nwot)
    assert strategy.best() == best and sum(_fake_nwot(a) == _fake_nwot(best) for a in set(good)) == 1
    assert paper.best() != best  # the fake TEG scores prefer 3x3 convolutions, the fake nwot skips
    # each architecture's proxies are asked once, and only for told architectures
    assert set(proxies.calls) <= told and set(proxies.calls.values()) == {1}
    order = strategy.distinct_order()
    assert history[order[0]][0] == best
    assert [history[i][0] for i in order[: len(set(good))]] == sorted(
        set(good), key=lambda a: (-_fake_nwot(a), [x for x, _ in history].index(a))
    )


def test_evolution_tournaments_rank_by_the_proxy_rule() -> None:
    proxies = _CountingProxies()
    evo = EvolutionStrategy(
        SPACE, seed=3, population_size=5, tournament_size=3, rule=RankRule.parse("nwot"), proxy_values=proxies
    )
    for _ in range(12):
        arch = evo.ask()
        tournament = evo.last_tournament
        if tournament is not None:
            members = [a for a, s in tournament.members if not s.bad]
            assert _fake_nwot(tournament.parent) == max(_fake_nwot(a) for a in members)
        evo.tell(arch, fake_score(arch))
    assert evo.last_tournament is not None


def test_a_proxy_rule_without_proxy_values_is_refused_at_construction() -> None:
    for name in ("random", "evolution", "reinforce"):
        with pytest.raises(ValueError) as error:
            make_strategy(name, SPACE, rule=RankRule.parse("ntk_cond,regions,kr_mse,synflow=0.5"))
        message = str(error.value)
        assert "names the zero-cost proxies synflow: pass proxy_values" in message and "\n" not in message
    with pytest.raises(TypeError, match="proxy_values must be a callable"):
        RandomStrategy(SPACE, rule=RankRule.parse("nwot"), proxy_values={"nwot": 1.0})  # type: ignore[arg-type]
    # params is the complexity, which the strategy computes itself: no callable needed
    RandomStrategy(SPACE, rule=RankRule.parse("params"))
    # a callable that leaves out a proxy the rule names fails when the arch is first ranked
    strategy = RandomStrategy(SPACE, rule=RankRule.parse("nwot,zen"), proxy_values=lambda arch: {"nwot": 1.0})
    strategy.tell(OPTIMUM, fake_score(OPTIMUM))
    with pytest.raises(ValueError, match="proxy_values gave no zen for"):
        strategy.best()


def test_a_proxy_rule_with_the_complexity_term_gets_both_values() -> None:
    """``params`` comes from the space, the proxies from the callable, in the one ``extra`` shape."""
    small = SPACE.parse(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    strategy = RandomStrategy(SPACE, rule=RankRule.parse("params,nwot"), proxy_values=_CountingProxies())
    same = TEGScore(ntk_cond=5.0, regions=50.0, kr_mse=0.5)
    strategy.replay([(OPTIMUM, same), (small, same)])
    assert strategy.extra_values([OPTIMUM, small]) == [
        {"params": float(SPACE.complexity(OPTIMUM)), "nwot": _fake_nwot(OPTIMUM)},
        {"params": float(SPACE.complexity(small)), "nwot": _fake_nwot(small)},
    ]
    # each wins one term: the tie goes to the first told
    assert strategy.best() == OPTIMUM
    assert RandomStrategy(SPACE).extra_values([OPTIMUM]) is None


def test_a_rank_rule_must_be_a_rank_rule_and_pruning_takes_none() -> None:
    with pytest.raises(TypeError, match="rule must be a RankRule"):
        EvolutionStrategy(SPACE, rule="ntk_cond,params")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="has no option 'rule'"):
        make_strategy("prune", SPACE, score_mask=fake_score_mask, rule=RankRule.parse("regions"))
