"""``fisher``: the Fisher-information channel saliency of Theis et al. / Turner et al., summed.

Definition: with L the mean cross-entropy on the training batch (BatchNorm in train mode), for every
output channel k of every convolution and linear layer, with a its output (before BatchNorm) and
n the image, the channel's saliency is 0.5 * mean_n (sum_{h,w} a * dL/da)^2. NAS-Bench-Suite-Zero
spreads each channel's saliency over the weights of that channel and sums over weights, so the
score is the sum over layers and channels of the saliency times the weights per output channel
(C_in * k * k for a convolution, in_features for a linear layer) -- that weighting is kept here.

Reference: Theis et al., *Faster gaze prediction with dense networks and Fisher pruning*, 2018;
Turner et al., *BlockSwap: Fisher-guided block substitution for network compression on a budget*,
ICLR 2020; as a NAS proxy: Abdelfattah et al., *Zero-Cost Proxies for Lightweight NAS*, ICLR 2021.
"""

from __future__ import annotations

import torch
from torch import nn

from teg_plugin.proxies._base import Proxy, ProxyInputs, WeightLayer, check_finite, finite, weight_layers


def compute(inputs: ProxyInputs) -> float:
    """The summed Fisher saliency of ``inputs``' network on its training batch."""
    net = inputs.network()
    outputs: list[tuple[WeightLayer, torch.Tensor]] = []

    def keep_output(module: WeightLayer, _args: object, out: torch.Tensor) -> None:  # on weight_layers only
        outputs.append((module, out))

    layers = list(weight_layers(net))
    handles = [layer.register_forward_hook(keep_output) for layer in layers]
    try:
        loss = nn.functional.cross_entropy(net(inputs.x), inputs.y)
    finally:
        for handle in handles:
            handle.remove()
    check_finite(loss, "the loss")
    grads = torch.autograd.grad(loss, [out for _, out in outputs], allow_unused=True)
    total = 0.0
    for (layer, act), grad in zip(outputs, grads):
        if grad is None:
            continue
        per_channel = (act.detach() * grad).flatten(2).sum(2) if act.dim() > 2 else act.detach() * grad
        saliency = per_channel.pow(2).mean(0).mul(0.5)
        total += float(saliency.sum()) * layer.weight[0].numel()
    return finite(total, "fisher")


PROXY = Proxy(
    "fisher",
    compute,
    needs_data=True,
    summary="Fisher channel saliency 0.5 mean_n (sum a dL/da)^2, weighted by weights per channel",
)
