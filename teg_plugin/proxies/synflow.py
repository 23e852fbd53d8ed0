"""``synflow``: Synaptic Flow, the data-free saliency of Tanaka et al., summed over the network.

Definition: replace every parameter by its absolute value, remove BatchNorm (an identity in its
place, as NAS-Bench-Suite-Zero's ``synflow`` does: with BN a constant input is normalised away),
feed one all-ones image and let R = sum of the logits; S is the sum over the weights w of every
convolution and linear layer of |w * dR/dw|, and the score is ln S, the scale NAS-Bench-Suite-Zero
publishes (its NB201 values run from about 15 to 115; S itself reaches 1e50). Computed in float64:
R is a product of as many weight magnitudes as the network is deep and overflows float32.

A network with no path from input to output has S = 0 (ln S = -inf): it is flagged, and so ranks
last (NAS-Bench-Suite-Zero writes 0 for it).

Reference: Tanaka et al., *Pruning neural networks without any data by iteratively conserving
synaptic flow*, NeurIPS 2020; used as a NAS proxy by Abdelfattah et al., *Zero-Cost Proxies for
Lightweight NAS*, ICLR 2021.
"""

from __future__ import annotations

import math

import torch

from teg_plugin.proxies._base import (
    NonFiniteProxy,
    Proxy,
    ProxyInputs,
    check_finite,
    finite,
    layer_weights,
    without_batch_norm,
)


def compute(inputs: ProxyInputs) -> float:
    """Synaptic flow of ``inputs``' network."""
    net = without_batch_norm(inputs.network()).double()
    with torch.no_grad():
        for param in net.parameters():
            param.abs_()
    weights = layer_weights(net)
    ones = torch.ones((1, *inputs.image_shape), dtype=torch.float64, device=inputs.device)
    flow = net(ones).sum()
    check_finite(flow, "the synaptic flow R")
    grads = torch.autograd.grad(flow, weights, allow_unused=True)
    total = sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads) if g is not None)
    if total == 0.0:
        raise NonFiniteProxy("no path joins input and output (synaptic flow 0, ln 0 = -inf)")
    return finite(math.log(total), "synflow")


PROXY = Proxy(
    "synflow",
    compute,
    needs_data=False,
    summary="synaptic flow: ln sum |w * dR/dw|, abs weights, all-ones input, no BN, float64",
)
