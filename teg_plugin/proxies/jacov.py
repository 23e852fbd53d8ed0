"""``jacov``: the Jacobian covariance score of Mellor et al. (NASWOT, first version).

Definition: J is the input Jacobian of the training batch (row i: the gradient of the sum of the
batch's logits w.r.t. image i, flattened; BatchNorm in train mode); C is the correlation matrix of
its rows (batch x batch) and v_1..v_n its eigenvalues; the score is
-sum_i (log(v_i + k) + 1 / (v_i + k)) with k = 1e-5, computed in float64. Every term is at least
1 for v_i > 0, so the score is at most -n (n the batch size) and equals -n when the images'
gradients are uncorrelated. A constant Jacobian row (correlation undefined) flags the architecture.

Reference: Mellor et al., *Neural Architecture Search without Training*, arXiv:2006.04647v1 (2020);
NAS-Bench-Suite-Zero's ``jacov`` (Krishnakumar et al., NeurIPS 2022).
"""

from __future__ import annotations

import torch

from teg_plugin.proxies._base import NonFiniteProxy, Proxy, ProxyInputs, finite, input_jacobian

#: The regulariser k of the score (Mellor et al.'s value).
EPSILON = 1e-5


def jacobian_correlation(jacobian: torch.Tensor) -> torch.Tensor:
    """The correlation matrix of the rows of ``jacobian`` (float64); :class:`NonFiniteProxy` when a
    row is constant (zero variance) or not finite."""
    rows = jacobian.double()
    centred = rows - rows.mean(1, keepdim=True)
    norms = torch.linalg.vector_norm(centred, dim=1)
    if not bool(torch.isfinite(norms).all()) or bool((norms == 0).any()):
        raise NonFiniteProxy("an input-Jacobian row is constant or not finite: its correlation is undefined")
    unit = centred / norms[:, None]
    return (unit @ unit.T).clamp_(-1.0, 1.0)


def score_correlation(corr: torch.Tensor) -> float:
    """``-sum(log(v + k) + 1/(v + k))`` over the eigenvalues ``v`` of the symmetric ``corr``."""
    eigenvalues = torch.linalg.eigvalsh(corr) + EPSILON
    return finite(-(torch.log(eigenvalues) + 1.0 / eigenvalues).sum(), "jacov")


def compute(inputs: ProxyInputs) -> float:
    """The Jacobian covariance score of ``inputs``' network on its training batch."""
    return score_correlation(jacobian_correlation(input_jacobian(inputs.network(), inputs.x)))


PROXY = Proxy(
    "jacov",
    compute,
    needs_data=True,
    summary="Jacobian covariance: -sum(log(v+k) + 1/(v+k)), v eigenvalues of corr(dy/dx)",
)
