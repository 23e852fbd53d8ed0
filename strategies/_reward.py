"""The REINFORCE reward of a TEG score: the normalised improvement over the previous one."""

from __future__ import annotations

import math
from collections import deque

from teg_plugin._checks import check_int, check_real
from teg_plugin.scores import HIGHER_IS_BETTER, INDICATORS, TEGScore

#: Reward of a ``bad`` score: -1 per indicator, the lowest reward a good score can receive (each
#: indicator's term is a change divided by a range that contains it, so it lies in [-1, 1]).
BAD_REWARD = -float(len(INDICATORS))

DEFAULT_WINDOW = 10


class TEGReward:
    """Turns a stream of TEG scores into rewards (stateful: call it once per told score, in order).

    For a good score ``s`` after the previous good score ``p``::

        reward = sum over indicators i with range_i > 0 of  sign_i * (s.i - p.i) / range_i

    with ``sign`` +1 for ``regions`` and -1 for ``ntk_cond`` and ``kr_mse`` (improving is positive),
    and ``range_i`` = max - min of the last ``window`` good values of ``i``, ``s.i`` included. The
    first good score gets 0. A ``bad`` score gets ``bad_reward`` and changes nothing: it enters no
    window and is not the "previous" of the next score.

    Raises:
        TypeError: ``window`` is not an int or ``bad_reward`` not a real number.
        ValueError: ``window < 2`` or ``bad_reward`` is not finite.

    Example:
        >>> reward = TEGReward()
        >>> reward(TEGScore(ntk_cond=10.0, regions=100.0, kr_mse=0.5))
        0.0
        >>> reward(TEGScore(ntk_cond=8.0, regions=110.0, kr_mse=0.5))  # (10-8)/2 + (110-100)/10
        2.0
    """

    def __init__(self, *, window: int = DEFAULT_WINDOW, bad_reward: float = BAD_REWARD) -> None:
        window = check_int("window", window, minimum=2)
        self._windows: dict[str, deque[float]] = {key: deque(maxlen=window) for key in INDICATORS}
        self._previous: TEGScore | None = None
        self._bad_reward = check_real("bad_reward", bad_reward)

    def __call__(self, score: TEGScore) -> float:
        """The reward of ``score`` (and record it as the latest)."""
        values = {key: float(getattr(score, key)) for key in INDICATORS}
        if score.bad or not all(math.isfinite(v) for v in values.values()):
            return self._bad_reward
        for key, value in values.items():
            self._windows[key].append(value)
        previous, self._previous = self._previous, score
        if previous is None:
            return 0.0
        reward = 0.0
        for key, value in values.items():
            spread = max(self._windows[key]) - min(self._windows[key])
            if spread > 0:
                sign = 1.0 if HIGHER_IS_BETTER[key] else -1.0
                reward += sign * (value - getattr(previous, key)) / spread
        return reward
