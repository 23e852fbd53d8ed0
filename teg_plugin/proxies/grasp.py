"""``grasp``: Gradient Signal Preservation (GraSP) of Wang et al., summed over the network.

Definition: with L the mean cross-entropy on the training batch (BatchNorm in train mode), g = dL/dw
over the weights w of every convolution and linear layer, and H the Hessian of L w.r.t. them, the
score is the sum over those weights of -w * (H g), NAS-Bench-Suite-Zero's sign (the negated GraSP
saliency, so that higher predicts better). H g is the gradient of g_detached . dL/dw
(one double-backward pass); NAS-Bench-Suite-Zero runs a second forward pass for it, which with the
same batch and train-mode BatchNorm gives the same graph.

Reference: Wang et al., *Picking Winning Tickets Before Training by Preserving Gradient Flow*, ICLR
2020; as a NAS proxy: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021.
"""

from __future__ import annotations

import torch

from teg_plugin.proxies._base import Proxy, ProxyInputs, cross_entropy_gradients, finite, layer_weights


def compute(inputs: ProxyInputs) -> float:
    """The summed GraSP score of ``inputs``' network on its training batch."""
    net = inputs.network()
    weights = layer_weights(net)
    grads = cross_entropy_gradients(net, inputs.x, inputs.y, weights, create_graph=True)
    inner = sum((g.detach() * g).sum() for g in grads if g.requires_grad)
    if not isinstance(inner, torch.Tensor):  # no weight reaches the loss: H g = 0
        return 0.0
    hg = torch.autograd.grad(inner, weights, allow_unused=True)
    return finite(sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg) if h is not None), "grasp")


PROXY = Proxy("grasp", compute, needs_data=True, summary="GraSP: sum -w * (H g) over conv and linear weights")
