"""Search strategies over a space, guided by TEG scores (installed as ``teg_plugin.strategies``).

Every strategy speaks ask/tell (:class:`Strategy`), is deterministic for its seed, can be resumed
by replaying its history, and never reads benchmark accuracies.
"""

from __future__ import annotations

from teg_plugin.strategies._base import ArchT, Strategy
from teg_plugin.strategies._evolution import EvolutionStrategy, Tournament
from teg_plugin.strategies._factory import STRATEGY_NAMES, make_strategy, strategy_key
from teg_plugin.strategies._pruning import PruneCandidate, PruneRound, PruningStrategy, ScoreMask
from teg_plugin.strategies._random import RandomStrategy
from teg_plugin.strategies._reinforce import Policy, ReinforceStrategy
from teg_plugin.strategies._reward import BAD_REWARD, TEGReward

__all__ = [
    "BAD_REWARD",
    "STRATEGY_NAMES",
    "ArchT",
    "EvolutionStrategy",
    "Policy",
    "PruneCandidate",
    "PruneRound",
    "PruningStrategy",
    "RandomStrategy",
    "ReinforceStrategy",
    "ScoreMask",
    "Strategy",
    "TEGReward",
    "Tournament",
    "make_strategy",
    "strategy_key",
]
