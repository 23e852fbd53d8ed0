"""The DARTS candidate ops, as modules.

They follow DARTS (Liu et al., 2019) and the NAS-Bench-201 / TE-NAS implementation of the DARTS
space: convolutions without bias, pooling without a BatchNorm after it, ``skip_connect`` becoming a
:class:`FactorizedReduce` where it has to halve the resolution. Every op maps ``channels`` to
``channels``; ``stride=2`` halves the spatial size, rounding up, so odd sizes (the 3x3 crops of the
thin network) work too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from teg_plugin.spaces.darts._genotype import OPS


def batch_norm(channels: int, running_stats: bool) -> nn.BatchNorm2d:
    """Affine BatchNorm; without running statistics it always normalises with the batch's own."""
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=running_stats)


class ReLUConvBN(nn.Sequential):
    """ReLU -> 1x1 conv (no bias) -> BatchNorm: the cells' input preprocessing."""

    def __init__(self, c_in: int, c_out: int, *, running_stats: bool = False) -> None:
        super().__init__(
            nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, 1, bias=False), batch_norm(c_out, running_stats)
        )


class FactorizedReduce(nn.Module):
    """ReLU, then two 1x1 stride-2 convs, on ``x`` and on ``x`` shifted by one pixel, concatenated,
    then BatchNorm: halves the resolution without dropping every other pixel.

    The shifted input is zero-padded at the bottom and right before shifting (as in NAS-Bench-201),
    so both halves have the same size for odd inputs too.
    """

    def __init__(self, c_in: int, c_out: int, *, running_stats: bool = False) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = batch_norm(c_out, running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """DARTS's ``none``: zeros of the op's output shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class SepConv(nn.Sequential):
    """Twice [ReLU, depthwise kxk conv, pointwise 1x1 conv, BatchNorm]; the stride is on the first."""

    def __init__(self, channels: int, kernel: int, stride: int, *, running_stats: bool = False) -> None:
        padding = kernel // 2
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel, stride=stride, padding=padding, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            batch_norm(channels, running_stats),
            nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel, stride=1, padding=padding, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            batch_norm(channels, running_stats),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk conv with dilation 2, pointwise 1x1 conv, BatchNorm."""

    def __init__(self, channels: int, kernel: int, stride: int, *, running_stats: bool = False) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(
                channels, channels, kernel, stride=stride, padding=kernel - 1, dilation=2, groups=channels, bias=False
            ),
            nn.Conv2d(channels, channels, 1, bias=False),
            batch_norm(channels, running_stats),
        )


def make_op(name: str, channels: int, stride: int, *, running_stats: bool = False) -> nn.Module:
    """The module of DARTS op ``name`` (one of :data:`OPS`) at ``channels`` channels.

    Args:
        stride: 1, or 2 on a reduction cell's edges from its two inputs.
        running_stats: BatchNorm keeps running statistics (the evaluation network) or always uses
            the batch's (the proxy and thin networks).
    """
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    if name == "none":
        return Zero(stride)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(channels, channels, running_stats=running_stats)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        return SepConv(channels, int(name[-1]), stride, running_stats=running_stats)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        return DilConv(channels, int(name[-1]), stride, running_stats=running_stats)
    raise ValueError(f"unknown DARTS op {name!r}; expected one of {', '.join(OPS)}")
