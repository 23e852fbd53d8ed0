"""Search strategies over a space, guided by TEG scores (installed as ``teg_plugin.strategies``).

Every strategy speaks ask/tell (:class:`Strategy`), is deterministic for its seed, can be resumed
by replaying its history, and never reads benchmark accuracies. Pick one by name with
:func:`make_strategy` (one of :data:`STRATEGY_NAMES`), or construct its class.

What the strategies are built from (tournaments, pruning rounds, the REINFORCE policy and reward,
default settings) stays in their own modules, e.g. ``teg_plugin.strategies._evolution``.
"""

from __future__ import annotations

from teg_plugin.strategies._base import Strategy
from teg_plugin.strategies._evolution import EvolutionStrategy
from teg_plugin.strategies._factory import STRATEGY_NAMES, make_strategy
from teg_plugin.strategies._pruning import PruningStrategy
from teg_plugin.strategies._random import RandomStrategy
from teg_plugin.strategies._reinforce import ReinforceStrategy

__all__ = [
    "STRATEGY_NAMES",
    "EvolutionStrategy",
    "PruningStrategy",
    "RandomStrategy",
    "ReinforceStrategy",
    "Strategy",
    "make_strategy",
]
