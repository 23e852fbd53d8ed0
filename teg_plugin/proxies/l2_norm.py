"""``l2_norm``: the sum over layers of the L2 norm of each layer's weights, at initialisation.

Definition: sum over the convolution and linear layers l of ||W_l||_2 (the Frobenius norm of the
weight tensor; biases and BatchNorm excluded), NAS-Bench-Suite-Zero's ``l2_norm``. It depends on the
initialisation only, not on data.

Reference: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021 (as a baseline);
Krishnakumar et al., *NAS-Bench-Suite-Zero*, NeurIPS 2022.
"""

from __future__ import annotations

import torch

from teg_plugin.proxies._base import Proxy, ProxyInputs, finite, layer_weights


@torch.no_grad()
def compute(inputs: ProxyInputs) -> float:
    """Sum of the weight norms of ``inputs``' network."""
    net = inputs.network()
    return finite(sum(float(torch.linalg.vector_norm(w.double())) for w in layer_weights(net)), "l2_norm")


PROXY = Proxy("l2_norm", compute, needs_data=False, summary="sum of the layers' weight norms at initialisation")
