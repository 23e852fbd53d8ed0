"""``epe_nas``: EPE-NAS, the per-class Jacobian correlation score of Lopes et al.

Definition: J is the input Jacobian of the training batch, as for ``jacov`` (row i: the gradient of
the sum of the batch's logits w.r.t. image i); for each class c present in the batch, C_c is the
correlation matrix of the rows of J of the images labelled c (1 x 1 = [1] for a single image) and
s_c = sum over its entries of log(|C_c| + k), k = 1e-5; the score is sum_c |s_c| (the form Lopes et
al. and NAS-Bench-Suite-Zero use for up to 100 classes). Computed in float64. A constant Jacobian
row flags the architecture (its correlations are undefined).

Reference: Lopes et al., *EPE-NAS: Efficient Performance Estimation Without Training for Neural
Architecture Search*, ICANN 2021; NAS-Bench-Suite-Zero's ``epe_nas`` (Krishnakumar et al., 2022).
"""

from __future__ import annotations

import torch

from teg_plugin.proxies._base import Proxy, ProxyInputs, finite, input_jacobian
from teg_plugin.proxies.jacov import EPSILON, jacobian_correlation


def compute(inputs: ProxyInputs) -> float:
    """The EPE-NAS score of ``inputs``' network on its training batch."""
    jacobian = input_jacobian(inputs.network(), inputs.x)
    total = 0.0
    for label in torch.unique(inputs.y):
        rows = jacobian[inputs.y == label]
        if rows.shape[0] == 1:  # np.corrcoef of one row is 1
            corr = torch.ones((1, 1), dtype=torch.float64)
        else:
            corr = jacobian_correlation(rows)
        total += abs(float(torch.log(corr.abs() + EPSILON).sum()))
    return finite(total, "epe_nas")


PROXY = Proxy(
    "epe_nas",
    compute,
    needs_data=True,
    summary="EPE-NAS: sum over classes of |sum log(|corr| + k)| of the per-class Jacobians",
)
