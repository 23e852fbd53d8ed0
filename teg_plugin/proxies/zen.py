"""``zen``: the Zen-score of Lin et al.

Definition: re-initialise every convolution and linear weight from N(0, 1) (BatchNorm: weight 1,
bias 0), as Zen-NAS does -- name-seeded like every initialisation here, so reproducible; draw a
Gaussian batch x and a Gaussian perturbation e of the training batch's shape; with f the feature map
before global average pooling (BatchNorm in train mode),
Delta = mean over images of sum over (channel, h, w) of |f(x) - f(x + 0.01 e)|, and the score is
log(Delta) + sum over BatchNorm layers of log(sqrt(mean over channels of the layer's running
variance)). Zen-NAS (and NAS-Bench-Suite-Zero) read that running variance after the two forward
passes, from PyTorch's default start (1) and momentum (0.1): 0.81 + 0.09 v_x + 0.1 v_mixed, with v
the channel's unbiased batch variance in each pass. The project's networks keep no running
statistics, so that value is computed from the batch variances directly; the paper's formula names
the batch variance itself, which is 0 after an op fed by a ``none`` edge (log 0), while the running
value stays finite. The training batch is not used: Zen-score is data-free.

Reference: Lin et al., *Zen-NAS: A Zero-Shot NAS for High-Performance Deep Image Recognition*, ICCV
2021; NAS-Bench-Suite-Zero's ``zen`` (Krishnakumar et al., NeurIPS 2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from teg_plugin.indicators.init import stable_seed
from teg_plugin.proxies._base import WEIGHT_LAYERS, NonFiniteProxy, Proxy, ProxyInputs, check_finite, finite

#: Zen-NAS's perturbation scale (``mixup_gamma``).
MIXUP_GAMMA = 1e-2

#: PyTorch's default BatchNorm momentum, with which Zen-NAS's running variances move from 1.
_BN_MOMENTUM = 0.1


@torch.no_grad()
def gaussian_init(net: nn.Module, seed: int) -> nn.Module:
    """Weights of convolution and linear layers from N(0, 1), biases 0, BatchNorm weight 1 and bias
    0; each parameter drawn from its own generator seeded by ``(seed, name)``. Returns ``net``."""
    for module_name, module in net.named_modules():
        if isinstance(module, WEIGHT_LAYERS):
            gen = torch.Generator().manual_seed(stable_seed(seed, "zen", f"{module_name}.weight"))
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen))
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            module.weight.fill_(1.0)
            module.bias.zero_()
    return net


def _pooling(net: nn.Module) -> nn.Module | None:
    pools = [m for m in net.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool1d))]
    return pools[-1] if pools else None


@torch.no_grad()
def compute(inputs: ProxyInputs) -> float:
    """Zen-score of ``inputs``' network (its own Gaussian weights and inputs)."""
    net = gaussian_init(inputs.network(), inputs.seed)
    gen = torch.Generator().manual_seed(stable_seed(inputs.seed, "zen", "inputs"))
    x = torch.randn(inputs.x.shape, generator=gen).to(inputs.x)
    noise = torch.randn(inputs.x.shape, generator=gen).to(inputs.x)
    pooling = _pooling(net)
    features: list[torch.Tensor] = []
    variances: list[float] = []  # per BatchNorm layer and pass, in call order

    def keep_features(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        features.append(args[0])

    def keep_variance(_module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        a = args[0].transpose(0, 1).reshape(args[0].shape[1], -1).double()
        variances.append(float(a.var(dim=1, unbiased=True).mean()))

    handles = [
        m.register_forward_pre_hook(keep_variance)
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    if pooling is not None:
        handles.append(pooling.register_forward_pre_hook(keep_features))
    try:
        out_x = net(x)
        out_mixed = net(x + MIXUP_GAMMA * noise)
    finally:
        for handle in handles:
            handle.remove()
    f_x, f_mixed = (features[0], features[1]) if pooling is not None else (out_x, out_mixed)
    delta = (f_x - f_mixed).double().abs().flatten(1).sum(1).mean()
    check_finite(delta, "zen's feature difference")
    if float(delta) <= 0.0:
        raise NonFiniteProxy("zen's feature difference is 0 (the features do not depend on the input)")
    half = len(variances) // 2
    m = _BN_MOMENTUM
    running = [(1 - m) * ((1 - m) + m * v_x) + m * v_mixed for v_x, v_mixed in zip(variances[:half], variances[half:])]
    check_finite(sum(running), "a BatchNorm layer's variance")
    return finite(math.log(float(delta)) + sum(0.5 * math.log(v) for v in running), "zen")


PROXY = Proxy(
    "zen",
    compute,
    needs_data=False,
    summary="Zen-score: log E|f(x) - f(x + 0.01 e)| + sum log sigma_BN, Gaussian weights and inputs",
)
