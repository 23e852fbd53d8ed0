"""``snip``: connection sensitivity (SNIP) of Lee et al., summed over the network.

Definition: with L the mean cross-entropy of the network on the training batch (BatchNorm in train
mode), the score is the sum over the weights w of every convolution and linear layer of
|w * dL/dw|. (SNIP differentiates L w.r.t. a multiplicative mask of ones on each weight; that
derivative is w * dL/dw.)

Reference: Lee et al., *SNIP: Single-shot network pruning based on connection sensitivity*, ICLR
2019; as a NAS proxy: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021.
"""

from __future__ import annotations

from teg_plugin.proxies._base import Proxy, ProxyInputs, cross_entropy_gradients, finite, layer_weights


def compute(inputs: ProxyInputs) -> float:
    """SNIP saliency of ``inputs``' network on its training batch."""
    net = inputs.network()
    weights = layer_weights(net)
    grads = cross_entropy_gradients(net, inputs.x, inputs.y, weights)
    return finite(sum(float((w.detach() * g).abs().sum()) for w, g in zip(weights, grads)), "snip")


PROXY = Proxy("snip", compute, needs_data=True, summary="SNIP: sum |w * dL/dw| over conv and linear weights")
