"""A minimal Adam optimiser on one numpy parameter vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from teg_plugin._checks import check_real


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, minimising; updates ``params`` in place.

    Raises:
        TypeError: a hyperparameter is not a real number, or ``betas`` is not a pair.
        ValueError: ``learning_rate`` or ``eps`` is not finite and > 0, or a beta is not in [0, 1).

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
        if isinstance(betas, str) or not isinstance(betas, Sequence) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.params = params
        self._lr = check_real("learning_rate", learning_rate, above=0.0)
        self._beta1, self._beta2 = (check_real(f"betas[{i}]", b, at_least=0.0, below=1.0) for i, b in enumerate(betas))
        self._eps = check_real("eps", eps, above=0.0)
        self._m = np.zeros_like(params, dtype=float)
        self._v = np.zeros_like(params, dtype=float)
        self._t = 0

    @property
    def learning_rate(self) -> float:
        """The step size."""
        return self._lr

    def step(self, grad: np.ndarray) -> None:
        """One descent step along ``grad`` (the gradient of the loss at ``params``)."""
        self._t += 1
        self._m = self._beta1 * self._m + (1 - self._beta1) * grad
        self._v = self._beta2 * self._v + (1 - self._beta2) * grad * grad
        m_hat = self._m / (1 - self._beta1**self._t)
        v_hat = self._v / (1 - self._beta2**self._t)
        self.params -= self._lr * m_hat / (np.sqrt(v_hat) + self._eps)
