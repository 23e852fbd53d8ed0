"""``params``: the number of parameters of the network, in millions.

Definition: the count of every trainable parameter (convolutions, BatchNorm affine parameters, the
classifier's weights and bias), of every op on every edge, reachable from the input or not, divided
by 10^6 -- NAS-Bench-201's and NAS-Bench-Suite-Zero's ``params_mb``. For the NB201 network at C=16,
N=5 it is 0.073306 + 0.028 n1 + 0.24304 n3 (10 classes), n1/n3 the counts of 1x1/3x3 convolutions.

Computed without running the network: it is built on PyTorch's ``meta`` device, which allocates no
weights.

Reference: the baseline of Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021,
and Krishnakumar et al., *NAS-Bench-Suite-Zero*, NeurIPS 2022 Datasets and Benchmarks.
"""

from __future__ import annotations

from teg_plugin.proxies._base import Proxy, ProxyInputs


def compute(inputs: ProxyInputs) -> float:
    """Parameters of ``inputs``' network, in millions."""
    net = inputs.meta_network()
    return sum(p.numel() for p in net.parameters() if p.requires_grad) / 1e6


PROXY = Proxy(
    "params", compute, needs_data=False, summary="number of parameters (millions), counted without running the network"
)
