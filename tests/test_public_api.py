"""The public names: few enough to hold in one's head, internals in their private modules."""

from __future__ import annotations

import importlib

import teg_plugin.strategies


def test_strategies_export_the_strategies_not_their_parts() -> None:
    assert sorted(teg_plugin.strategies.__all__) == sorted([
        "STRATEGY_NAMES",
        "EvolutionStrategy",
        "PruningStrategy",
        "RandomStrategy",
        "ReinforceStrategy",
        "Strategy",
        "make_strategy",
    ])
    for name in teg_plugin.strategies.__all__:
        assert getattr(teg_plugin.strategies, name) is not None
    internals = {
        "_base": ["ArchT"],
        "_evolution": ["Tournament", "DEFAULT_POPULATION_SIZE"],
        "_factory": ["strategy_key"],
        "_pruning": ["PruneCandidate", "PruneRound", "ScoreMask"],
        "_reinforce": ["Policy"],
        "_reward": ["BAD_REWARD", "TEGReward"],
    }
    for module, names in internals.items():
        private = importlib.import_module(f"teg_plugin.strategies.{module}")
        for name in names:
            assert hasattr(private, name)
            assert not hasattr(teg_plugin.strategies, name), f"teg_plugin.strategies.{name} is internal"
