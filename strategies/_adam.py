"""A minimal Adam optimiser on one numpy parameter vector."""

from __future__ import annotations

import numpy as np


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, minimising; updates ``params`` in place.

    Example:
        >>> params = np.zeros(2)
        >>> opt = Adam(params, learning_rate=0.1)
        >>> opt.step(np.array([1.0, -1.0]))
        >>> params.round(3).tolist()
        [-0.1, 0.1]
    """

    def __init__(
        self,
        params: np.ndarray,
        *,
        learning_rate: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self._lr = float(learning_rate)
        self._beta1, self._beta2 = (float(b) for b in betas)
        self._eps = float(eps)
        self._m = np.zeros_like(params, dtype=float)
        self._v = np.zeros_like(params, dtype=float)
        self._t = 0

    def step(self, grad: np.ndarray) -> None:
        """One descent step along ``grad`` (the gradient of the loss at ``params``)."""
        self._t += 1
        self._m = self._beta1 * self._m + (1 - self._beta1) * grad
        self._v = self._beta2 * self._v + (1 - self._beta2) * grad * grad
        m_hat = self._m / (1 - self._beta1**self._t)
        v_hat = self._v / (1 - self._beta2**self._t)
        self.params -= self._lr * m_hat / (np.sqrt(v_hat) + self._eps)
