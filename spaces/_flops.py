"""Counting a network's FLOPs the way NAS-Bench-201 reports them.

NAS-Bench-201's FLOPs are exact linear functions of a cell's op counts (see
``../shared/data/README.md``). This counting convention reproduces them exactly, constants and
per-op coefficients alike, for 10 and 100 classes (tested on every sampled architecture against the
ground-truth table):

* convolution: multiply-accumulates (``k_h * k_w * C_in / groups`` per output element) plus one per
  input element;
* BatchNorm and ReLU: one per output element;
* average/max pooling with a ``k x k`` window: ``k * k`` per output element;
* adaptive (global) average pooling: one per input element plus one per output element;
* linear: ``in_features * out_features`` (no bias term).

Other modules (identity, zero, containers) count nothing. The convention was chosen because it
reproduces the published numbers; it is not a claim about how they were first computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass of ``model`` on one input of ``input_shape`` (``(C, H, W)``).

    The model runs once in eval mode under ``torch.no_grad`` on a zero input of its parameters'
    device and dtype; its train/eval mode is restored and the counting hooks removed afterwards. A
    model built on PyTorch's ``meta`` device is counted from shapes alone, without any arithmetic.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        ...                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
        >>> count_flops(net, (3, 8, 8)) == (27 * 4 * 64 + 3 * 64) + 4 * 64 + 4 * 64 + (4 * 64 + 4) + 40
        True
    """
    total = 0

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _module_flops(module, args[0], output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            first = next(model.parameters(), None)
            like: dict[str, Any] = {"device": first.device, "dtype": first.dtype} if first is not None else {}
            model(torch.zeros(1, *input_shape, **like))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def _module_flops(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    out_elements = out[0].numel()
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        return out_elements * k_h * k_w * module.in_channels // module.groups + x[0].numel()
    if isinstance(module, (nn.BatchNorm2d, nn.ReLU)):
        return out_elements
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return out_elements * k * k
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return x[0].numel() + out_elements
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0
