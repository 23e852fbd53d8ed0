"""Every TEG search strategy on the DARTS space, with a fake, deterministic scorer whose optimum is
known (sep_conv_3x3 on the edges from the two cell inputs, in both cells); and one real supernet mask."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence

import pytest

from teg_plugin.config import TEGConfig
from teg_plugin.scorer import TEGScorer
from teg_plugin.scores import TEGScore, best_index
from teg_plugin.spaces.darts import DARTS_V2, MASK_KEYS, DartsGenotype, DartsSpace
from teg_plugin.strategies import (
    EvolutionStrategy,
    PruningStrategy,
    RandomStrategy,
    ReinforceStrategy,
    Strategy,
    make_strategy,
)

SPACE = DartsSpace()
#: The fake objective's per-op quality (all different, sep_conv_3x3 the best).
OP_WEIGHT = {
    "sep_conv_3x3": 3.0,
    "sep_conv_5x5": 2.0,
    "dil_conv_3x3": 1.6,
    "dil_conv_5x5": 1.3,
    "skip_connect": 1.0,
    "avg_pool_3x3": 0.6,
    "max_pool_3x3": 0.3,
}
SEP_OPS = ("sep_conv_3x3", "sep_conv_5x5")
#: The fake optimum: every node sums sep_conv_3x3 of inputs 0 and 1, in both cells.
_BEST_NODE = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
OPTIMUM = DartsGenotype.from_pairs(_BEST_NODE * 4, _BEST_NODE * 4)
STEPS = 30
#: 6 op rounds (7 ops down to 1) of 1 + 28 * n masks, then one group per node 3..5 and cell of 1 + k.
N_SUPERNET_EVALUATIONS = 1 * 6 + 28 * (7 + 6 + 5 + 4 + 3 + 2) + (4 + 5 + 6) * 2
TINY = TEGConfig(width=1, repeat=1, batch_size=8, regions_batch_size=64, regions_batches=2)


def source_weight(source: int) -> float:
    """Edges from low inputs weigh more: ``1 / (1 + source)`` (1, 1/2, 1/3, ...)."""
    return 1.0 / (1.0 + source)


def edge_weight(key: str) -> float:
    return source_weight(int(key.rsplit("<-", 1)[1]))


def fake_score_mask(mask: Mapping[str, Sequence[str]]) -> TEGScore:
    """Indicators from each edge's mean op quality, share of sep_conv ops and weight (an empty edge
    counts nothing). Removing a good op, or an edge from a low input, hurts on every indicator."""
    quality = sep = low = 0.0
    for key, ops in mask.items():
        if not ops:
            continue
        weight = edge_weight(key)
        quality += weight * sum(OP_WEIGHT[op] for op in ops) / len(ops)
        sep += weight * sum(op in SEP_OPS for op in ops) / len(ops)
        low += weight
    return TEGScore(ntk_cond=100.0 - quality, regions=10.0 * sep + low, kr_mse=1.0 / (1.0 + quality))


def fake_score(genotype: DartsGenotype) -> TEGScore:
    return fake_score_mask(SPACE.mask_of(genotype))


def quality(genotype: DartsGenotype) -> float:
    return sum(
        OP_WEIGHT[op] * source_weight(source)
        for cell in ("normal", "reduce")
        for node in genotype.cell(cell)
        for op, source in node
    )


class CountingScoreMask:
    """``fake_score_mask`` that counts its calls and checks every mask it gets."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, mask: Mapping[str, Sequence[str]]) -> TEGScore:
        assert set(mask) == set(MASK_KEYS)
        self.calls += 1
        return fake_score_mask(mask)


def drive(strategy: Strategy, steps: int = STEPS) -> list[DartsGenotype]:
    asked = []
    for _ in range(steps):
        genotype = strategy.ask()
        strategy.tell(genotype, fake_score(genotype))
        asked.append(genotype)
    return asked


def assert_valid(genotype: object) -> None:
    assert isinstance(genotype, DartsGenotype)
    assert genotype == SPACE.canonical(genotype)
    assert SPACE.from_params(SPACE.to_params(genotype)) == genotype
    assert SPACE.parse(SPACE.format(genotype)) == genotype
    assert SPACE.arch_from_mask(SPACE.mask_of(genotype)) == genotype


def test_fake_objective_optimum() -> None:
    assert_valid(OPTIMUM)
    rng = random.Random(0)
    others = [SPACE.sample(rng) for _ in range(200)] + [DARTS_V2.canonical(), *SPACE.neighbours(OPTIMUM)]
    scores = [fake_score(g) for g in others] + [fake_score(OPTIMUM)]
    assert best_index(scores) == len(scores) - 1
    assert quality(OPTIMUM) == max(quality(g) for g in [*others, OPTIMUM])


# --- supernet pruning ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pruned() -> tuple[PruningStrategy, CountingScoreMask]:
    counter = CountingScoreMask()
    strategy = PruningStrategy(SPACE, counter, seed=0)
    strategy.run()
    return strategy, counter


def test_pruning_finds_the_fake_optimum(pruned: tuple[PruningStrategy, CountingScoreMask]) -> None:
    strategy, _ = pruned
    found = strategy.run()
    assert_valid(found)
    assert found == OPTIMUM
    assert strategy.ask() == found  # the first ask is the found genotype


def test_pruning_rounds_and_supernet_evaluations(pruned: tuple[PruningStrategy, CountingScoreMask]) -> None:
    strategy, counter = pruned
    assert N_SUPERNET_EVALUATIONS == 792
    assert strategy.n_supernet_evaluations == counter.calls == N_SUPERNET_EVALUATIONS
    assert strategy.planned_evaluations == N_SUPERNET_EVALUATIONS
    rounds = strategy.rounds
    assert len(rounds) == 12
    # Op rounds: every edge loses one op per round, the worst first.
    for index, prune_round in enumerate(rounds[:6]):
        assert all(len(ops) == 7 - index for ops in prune_round.mask.values())
        assert len(prune_round.candidates) == 28 * (7 - index)
        assert set(prune_round.dropped) == set(MASK_KEYS)
    assert set(rounds[0].dropped.values()) == {"max_pool_3x3"}
    assert set(rounds[5].dropped.values()) == {"sep_conv_5x5"}
    # Edge phase: nodes 3, 4 and 5 of each cell keep their 2 most important incoming edges.
    groups = [(cell, node) for cell in ("normal", "reduce") for node in (3, 4, 5)]
    for prune_round, (cell, node) in zip(rounds[6:], groups, strict=True):
        assert [c.choice for c in prune_round.candidates] == [f"{cell}/{node}<-{i}" for i in range(node)]
        assert all(ops == ("sep_conv_3x3",) for ops in prune_round.mask.values() if ops)
        assert sorted(prune_round.dropped) == [f"{cell}/{node}<-{i}" for i in range(2, node)]


def test_pruning_later_asks_are_valid_and_deterministic() -> None:
    a, b = PruningStrategy(SPACE, fake_score_mask, seed=4), PruningStrategy(SPACE, fake_score_mask, seed=4)
    asked = drive(a, 8)
    assert asked == drive(b, 8)
    assert asked[0] == OPTIMUM
    for genotype in asked:
        assert_valid(genotype)
    assert len(set(asked)) == len(asked)
    assert a.best() == OPTIMUM


def test_make_strategy_prune_on_darts() -> None:
    strategy = make_strategy("prune", SPACE, score_mask=fake_score_mask)
    assert strategy.ask() == OPTIMUM


# --- evolution, REINFORCE, random -------------------------------------------------------------------


def _build(name: str, seed: int) -> Strategy:
    if name == "evolution":
        return EvolutionStrategy(SPACE, seed=seed, population_size=8, tournament_size=3)
    if name == "reinforce":
        return ReinforceStrategy(SPACE, seed=seed, learning_rate=0.2)
    return RandomStrategy(SPACE, seed=seed)


@pytest.mark.parametrize("name", ["evolution", "reinforce", "random"])
def test_ask_tell_on_darts_is_valid_and_deterministic(name: str) -> None:
    first, second = _build(name, seed=11), _build(name, seed=11)
    asked = drive(first)
    assert len(first.history) == STEPS
    for genotype in asked:
        assert_valid(genotype)
    assert asked == drive(second)
    assert first.best() == second.best()
    assert drive(_build(name, seed=12)) != asked


@pytest.mark.parametrize("name", ["evolution", "reinforce", "random"])
def test_replay_resumes_on_darts(name: str) -> None:
    original = _build(name, seed=3)
    drive(original, 20)
    history = original.history
    expected = drive(original, 5)
    resumed = _build(name, seed=3).replay(history)
    assert drive(resumed, 5) == expected


def test_evolution_mutates_both_ops_and_inputs() -> None:
    evolution = EvolutionStrategy(SPACE, seed=0, population_size=8, tournament_size=3)
    kinds = set()
    for _ in range(STEPS):
        child = evolution.ask()
        tournament = evolution.last_tournament
        if tournament is not None:
            assert tournament.child == child
            assert child in SPACE.neighbours(tournament.parent)
            parent, new = SPACE.to_params(tournament.parent), SPACE.to_params(child)
            changed = {name for name in parent if parent[name] != new[name]}
            kinds.add("input" if any(name.endswith("/inputs") for name in changed) else "op")
        evolution.tell(child, fake_score(child))
    assert kinds == {"input", "op"}


def _late_quality(name: str, seed: int) -> float:
    """Mean fake quality of the last 10 of 30 proposals."""
    asked = drive(_build(name, seed))
    return statistics.mean(quality(genotype) for genotype in asked[-10:])


@pytest.mark.parametrize("name", ["evolution", "reinforce"])
def test_guided_proposals_beat_random_on_the_fake_objective(name: str) -> None:
    # Over 40 seeds the late proposals average 17.9 (evolution) and 15.3 (REINFORCE) against 13.1
    # for random search (per-seed spread 1.6, 1.2 and 0.7): 8 seeds separate them clearly. The best
    # of only 30 proposals is too noisy to compare.
    seeds = range(8)
    guided = statistics.mean(_late_quality(name, seed) for seed in seeds)
    random_search = statistics.mean(_late_quality("random", seed) for seed in seeds)
    assert guided > random_search + 1.0


def test_reinforce_learns_towards_the_fake_optimum_ops() -> None:
    reinforce = ReinforceStrategy(SPACE, seed=0, learning_rate=0.2)
    drive(reinforce)
    start, end = reinforce.policy_log[0], reinforce.policy_log[-1]
    ops = [name for name in start if "/op" in name]
    gained = [end[name][SPACE.choices()[name].index("sep_conv_3x3")] - 1 / 7 for name in ops]
    assert statistics.mean(gained) > 0


# --- a real supernet mask ----------------------------------------------------------------------------


def test_real_scorer_scores_a_pruned_supernet_mask() -> None:
    """A mask as pruning leaves it after five op rounds: two ops on every edge of both cells."""
    pairs = [("sep_conv_3x3", "skip_connect"), ("max_pool_3x3", "dil_conv_5x5"), ("avg_pool_3x3", "sep_conv_5x5")]
    mask = {key: pairs[i % len(pairs)] for i, key in enumerate(MASK_KEYS)}
    scorer = TEGScorer(SPACE, data="synthetic", config=TINY, device="cpu", cache=None)
    score = scorer.score_mask(mask)
    assert not score.bad, score.reason
    assert math.isfinite(score.ntk_cond) and score.ntk_cond >= 1.0
    assert score.regions > 1 and math.isfinite(score.kr_mse)
    measured = scorer.n_measured
    assert scorer.score_mask({key: tuple(reversed(ops)) for key, ops in mask.items()}) == score
    assert scorer.n_measured == measured  # the same supernet, from the memo
    # The genotype masks pruning ends with score on the same scorer.
    assert not scorer.score_mask(SPACE.mask_of(OPTIMUM)).bad
