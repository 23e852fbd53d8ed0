"""``flops``: the FLOPs of one forward pass of one image, in millions.

Definition: NAS-Bench-201's counting convention (:func:`teg_plugin.spaces.count_flops`: a
convolution's multiply-accumulates plus one per input element, one per output element of BatchNorm
and ReLU, k*k per output of a k x k pooling, ...), which reproduces NAS-Bench-201's and
NAS-Bench-Suite-Zero's ``flops_m`` exactly for every NB201 architecture: 7.943872 + 4.36224 n1 +
35.81952 n3 + 1.29024 na at C=16, N=5 and 10 classes.

Computed without running the network: the network is built on PyTorch's ``meta`` device and a
``meta`` image is passed through it, which propagates shapes only (no weights, no arithmetic).

Reference: the baseline of Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021;
Dong & Yang, *NAS-Bench-201*, ICLR 2020.
"""

from __future__ import annotations

from teg_plugin.proxies._base import Proxy, ProxyInputs
from teg_plugin.spaces import count_flops


def compute(inputs: ProxyInputs) -> float:
    """FLOPs of ``inputs``' network on one image, in millions."""
    return count_flops(inputs.meta_network(), inputs.image_shape) / 1e6


PROXY = Proxy(
    "flops", compute, needs_data=False, summary="forward FLOPs of one image (millions), counted on shapes only"
)
