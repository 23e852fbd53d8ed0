"""``nwot``: NASWOT, the log-determinant of the Hamming kernel of ReLU codes (Mellor et al., v2).

Definition: run the training batch through the network (BatchNorm in train mode); at every ReLU,
each image's binary code is which of the ReLU's input units are positive; over all ReLUs, K_H(i, j)
is the number of units on which images i and j agree (N_A minus the Hamming distance of their
codes, N_A the number of units). The score is log|det K_H| (NAS-Bench-Suite-Zero: ``slogdet``'s log
of the absolute determinant), computed in float64; a singular K_H (two images with identical codes)
gives -inf and flags the architecture.

K_H = c c^T + (1 - c)(1 - c)^T is computed per ReLU as N_A - |c_i| - |c_j| + 2 c_i . c_j (one
matrix product), in float32 for each ReLU (exact: its counts stay below 2^24) summed in float64.

Reference: Mellor et al., *Neural Architecture Search without Training*, ICML 2021 (v2 of
arXiv:2006.04647); NAS-Bench-Suite-Zero's ``nwot`` (Krishnakumar et al., NeurIPS 2022).
"""

from __future__ import annotations

import torch
from torch import nn

from teg_plugin.proxies._base import NonFiniteProxy, Proxy, ProxyInputs, finite

#: Units per ReLU up to which float32 counts are exact (2^24).
_EXACT_FLOAT32 = 1 << 24


def hamming_kernel(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """K_H of ``x`` over every ``nn.ReLU`` of ``net`` (float64, ``(batch, batch)``)."""
    n = x.shape[0]
    kernel = torch.zeros((n, n), dtype=torch.float64, device=x.device)

    def add_codes(_module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        nonlocal kernel
        codes = args[0].detach().reshape(n, -1) > 0
        units = codes.shape[1]
        dtype = torch.float32 if units < _EXACT_FLOAT32 else torch.float64
        c = codes.to(dtype)
        ones = c.sum(1)
        agree = 2.0 * (c @ c.T) - ones[:, None] - ones[None, :] + units
        kernel += agree.double()

    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise ValueError("nwot needs a network with nn.ReLU modules")
    handles = [m.register_forward_hook(add_codes) for m in relus]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return kernel


def compute(inputs: ProxyInputs) -> float:
    """NASWOT score of ``inputs``' network on its training batch."""
    _sign, logdet = torch.linalg.slogdet(hamming_kernel(inputs.network(), inputs.x))
    if float(logdet) == float("-inf"):
        raise NonFiniteProxy("the Hamming kernel is singular (two images share every ReLU code)")
    return finite(logdet, "nwot")


PROXY = Proxy("nwot", compute, needs_data=True, summary="NASWOT: log|det K_H| of the ReLU codes' Hamming kernel")
