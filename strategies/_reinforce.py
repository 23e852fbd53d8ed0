"""REINFORCE with an independent categorical policy per choice, rewarded by TEG improvements."""

from __future__ import annotations

import bisect
import copy
import itertools
import math
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from teg_plugin._checks import check_real
from teg_plugin.scores import PAPER_RULE, RankRule, TEGScore
from teg_plugin.strategies._adam import Adam
from teg_plugin.strategies._base import ArchT, Strategy
from teg_plugin.strategies._reward import BAD_REWARD, DEFAULT_WINDOW, TEGReward

if TYPE_CHECKING:
    from teg_plugin.spaces._base import SearchSpace

#: The policy's probabilities: choice name -> one probability per option (in the space's order).
Policy = dict[str, tuple[float, ...]]

#: Adam's step size (the paper's) and the momentum of the reward baseline (NAS-Bench-201's reference).
DEFAULT_LEARNING_RATE = 0.04
DEFAULT_BASELINE_MOMENTUM = 0.9


class ReinforceStrategy(Strategy[ArchT]):
    """REINFORCE (Williams 1992) over one softmax policy per choice, guided by TEG (no accuracies).

    * :meth:`ask` samples every choice independently from its current softmax (uniform at start).
    * :meth:`tell` computes the reward of the score with :class:`TEGReward` (normalised improvement of
      the three indicators over the previous told score; 0 for the first; ``bad_reward`` for a
      ``bad`` score), updates the moving-average baseline, and takes one Adam step on
      ``-advantage * log pi(arch)`` with ``advantage = reward - baseline``.
    * :meth:`best` is the lowest rank-sum over the whole history.

    The baseline follows NAS-Bench-201's REINFORCE reference: it starts at the first reward and is
    updated *before* the advantage is taken (``b <- m*b + (1-m)*r``; ``advantage = r - b``).

    The gradient is taken at the policy of tell time, for the told options, whether the arch was
    asked or not. The paper runs 500 steps; the caller picks the budget (~100-200 on a laptop CPU).

    Args:
        space: the search space.
        seed: seed of all randomness.
        learning_rate: Adam's step size (paper: 0.04); finite and > 0.
        betas: Adam's moment decays, a pair in [0, 1).
        eps: Adam's epsilon; finite and > 0.
        baseline_momentum: m of the moving-average baseline, in [0, 1).
        window: number of recent good values whose range normalises each indicator's change (>= 2).
        bad_reward: reward of a ``bad`` score (default -3, the lowest reward a good score can get);
            finite.
        rule: how :meth:`best` ranks (default: the paper's rank-sum); the reward keeps the three
            indicators.
        proxy_values: the zero-cost proxies of an architecture, ``arch -> {name: value}``, for a
            ``rule`` that names any (see :class:`Strategy`).

    Raises:
        TypeError: a hyperparameter of the wrong type (``window`` and ``seed`` are ints).
        ValueError: a hyperparameter out of its range above.

    The policy stays finite: a tell whose update would make it NaN or infinite (an absurd
    ``learning_rate`` such as 1e308, or extreme indicator values) raises ``ValueError`` and changes
    nothing, so :meth:`ask` never samples from a broken policy (it raises ``RuntimeError`` if the
    policy is non-finite all the same).

    Example:
        >>> from teg_plugin.spaces import NB201Space
        >>> rl = ReinforceStrategy(NB201Space(), seed=0)
        >>> rl.probabilities["1<-0"]
        (0.2, 0.2, 0.2, 0.2, 0.2)
        >>> rl.tell(rl.ask(), TEGScore(ntk_cond=10.0, regions=50.0, kr_mse=0.1))
        >>> len(rl.policy_log), rl.rewards
        (2, [0.0])
    """

    def __init__(
        self,
        space: SearchSpace[ArchT],
        *,
        seed: int = 0,
        learning_rate: float = DEFAULT_LEARNING_RATE,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        baseline_momentum: float = DEFAULT_BASELINE_MOMENTUM,
        window: int = DEFAULT_WINDOW,
        bad_reward: float = BAD_REWARD,
        rule: RankRule = PAPER_RULE,
        proxy_values: Callable[[ArchT], Mapping[str, float]] | None = None,
    ) -> None:
        super().__init__(space, seed=seed, rule=rule, proxy_values=proxy_values)
        momentum = check_real("baseline_momentum", baseline_momentum, at_least=0.0, below=1.0)
        self._options = {name: tuple(options) for name, options in space.choices().items()}
        bounds = list(itertools.accumulate(len(options) for options in self._options.values()))
        self._slices = {
            name: slice(end - len(options), end) for (name, options), end in zip(self._options.items(), bounds)
        }
        self._logits = np.zeros(bounds[-1] if bounds else 0)
        self._adam = Adam(self._logits, learning_rate=learning_rate, betas=betas, eps=eps)
        self._reward = TEGReward(window=window, bad_reward=bad_reward)
        self._momentum = momentum
        self._baseline: float | None = None
        self._rewards: list[float] = []
        self._policy_log: list[Policy] = [self.probabilities]

    @property
    def probabilities(self) -> Policy:
        """The current policy: choice -> probability of each option (in the space's order)."""
        return {name: tuple(float(p) for p in self._softmax(name)) for name in self._options}

    @property
    def policy_log(self) -> list[Policy]:
        """The policy before the first tell and after every tell (``len(history) + 1`` entries)."""
        return list(self._policy_log)

    @property
    def rewards(self) -> list[float]:
        """The reward of every tell, in tell order."""
        return list(self._rewards)

    @property
    def baseline(self) -> float | None:
        """The moving-average baseline (``None`` before the first tell)."""
        return self._baseline

    def _softmax(self, name: str) -> np.ndarray:
        logits = self._logits[self._slices[name]]
        with np.errstate(over="ignore"):  # a logit ~1e308 below the max gives -inf: weight 0, as it should
            weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def _propose(self, rng: random.Random) -> ArchT:
        if not np.isfinite(self._logits).all():
            raise RuntimeError("the REINFORCE policy is not finite (NaN/inf logits); it cannot propose")
        params = {}
        for name, options in self._options.items():
            cumulative = np.cumsum(self._softmax(name)).tolist()
            # min() guards a draw above the last cumulative sum when it rounds below 1.
            params[name] = options[min(bisect.bisect_right(cumulative, rng.random()), len(options) - 1)]
        return self._space.from_params(params)

    def _observe(self, arch: ArchT, score: TEGScore) -> None:
        # The update runs on copies of the reward and the optimiser (which owns the logits), and is
        # committed only once the new policy is known to be finite: a failing tell changes nothing.
        reward_of = copy.deepcopy(self._reward)
        adam = copy.deepcopy(self._adam)
        reward = reward_of(score)
        baseline = reward if self._baseline is None else self._momentum * self._baseline + (1 - self._momentum) * reward
        advantage = reward - baseline
        grad = np.zeros_like(self._logits)
        for name, option in self._space.to_params(arch).items():
            # d log softmax(theta)[a] / d theta = onehot(a) - p; the loss is -advantage * log pi.
            one_hot = np.zeros(len(self._options[name]))
            one_hot[self._options[name].index(option)] = 1.0
            grad[self._slices[name]] = -advantage * (one_hot - self._softmax(name))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
            adam.step(grad)
        if not (math.isfinite(baseline) and np.isfinite(adam.params).all()):
            raise ValueError(
                f"this tell would make the REINFORCE policy non-finite (reward {reward}, baseline {baseline}) and "
                f"was not recorded; is learning_rate={self._adam.learning_rate} too large, or the score extreme?"
            )
        self._reward, self._adam, self._logits = reward_of, adam, adam.params
        self._rewards.append(reward)
        self._baseline = baseline
        self._policy_log.append(self.probabilities)
