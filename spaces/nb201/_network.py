"""NAS-Bench-201 networks: the cell, the macro skeleton, and the thin network for E.

Module names are chosen so that a parameter's name says where it sits in the *supernet*: the op on
edge ``2<-1`` of the first cell is ``cells.0.edges.2<-1.nor_conv_3x3``. A single-path network
therefore holds a subset of the supernet's parameters under the same names, and name-seeded
initialisation (see :mod:`teg_plugin.indicators.init`) gives the same op on the same edge the same
weights in every architecture.

A :class:`NB201Cell` is built from a *mask*: for each edge, the set of ops that are active. A
single-path cell has one op per edge; the supernet has all five; pruning removes ops. An inactive op
is not computed at all (it contributes zero and owns no activations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from teg_plugin.spaces._supernet import edge_mean
from teg_plugin.spaces.nb201._arch import EDGE_NAMES, EDGES, NUM_NODES, OPS, NB201Arch

#: Per edge, the ops that are active in a (possibly partly pruned) supernet cell.
EdgeMask = Mapping[str, Sequence[str]]


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BatchNorm, NB201's ``nor_conv_k`` and the ResNet block's halves."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
            _batch_norm(c_out),
        )


class Zero(nn.Module):
    """NB201's ``none``: the edge contributes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    # No running statistics: BatchNorm always normalises with the statistics of the batch it sees,
    # which is the paper's train-mode BN, and scoring never mutates module buffers.
    return nn.BatchNorm2d(channels, affine=True, track_running_stats=False)


def make_op(name: str, channels: int) -> nn.Module:
    """The module for NB201 op ``name`` at ``channels`` channels (stride 1, shape-preserving)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 op {name!r}; expected one of {', '.join(OPS)}")


def single_path_mask(arch: NB201Arch) -> dict[str, tuple[str, ...]]:
    """The mask that activates exactly ``arch``'s op on every edge."""
    return {edge: (op,) for edge, op in zip(EDGE_NAMES, arch.ops)}


def full_mask() -> dict[str, tuple[str, ...]]:
    """The mask of the whole supernet: every op on every edge."""
    return {edge: OPS for edge in EDGE_NAMES}


def _check_mask(mask: EdgeMask) -> dict[str, tuple[str, ...]]:
    unknown_edges = set(mask) - set(EDGE_NAMES)
    if unknown_edges:
        raise ValueError(f"unknown NB201 edges in mask: {sorted(unknown_edges)}; expected {EDGE_NAMES}")
    checked: dict[str, tuple[str, ...]] = {}
    for edge in EDGE_NAMES:
        ops = tuple(mask.get(edge, ()))
        if not ops:
            raise ValueError(f"edge {edge} has no active op")
        bad = [op for op in ops if op not in OPS]
        if bad:
            raise ValueError(f"unknown NB201 ops {bad} on edge {edge}; expected one of {', '.join(OPS)}")
        # Keep NB201 op order so module registration (and hence parameter order) is canonical.
        checked[edge] = tuple(op for op in OPS if op in ops)
    return checked


class NB201Cell(nn.Module):
    """An NB201 cell at ``channels`` channels whose edges hold the ops active in ``mask``.

    Each node is the sum over its incoming edges of the *mean* of the edge's active ops: the
    supernet of DARTS-style search (and TE-NAS's pruning), whose op weights are a softmax over the
    ops not yet pruned, i.e. uniform over the active ones. With one op per edge it is the plain cell.
    """

    def __init__(self, channels: int, mask: EdgeMask) -> None:
        super().__init__()
        self.mask = _check_mask(mask)
        self.edges = nn.ModuleDict(
            {edge: nn.ModuleDict({op: make_op(op, channels) for op in ops}) for edge, ops in self.mask.items()}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in range(1, NUM_NODES):
            total: torch.Tensor | None = None
            for i in range(j):
                edge_name = EDGE_NAMES[k]
                assert EDGES[k] == (j, i)
                k += 1
                out = edge_mean(cast(nn.ModuleDict, self.edges[edge_name]).values(), nodes[i])
                total = out if total is None else total + out
            assert total is not None
            nodes.append(total)
        return nodes[-1]


class ResNetReduction(nn.Module):
    """NB201's stage transition: a stride-2 ResNet basic block from ``c_in`` to ``c_out`` channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


class NB201Network(nn.Module):
    """The NB201 macro skeleton around cells built from ``mask``.

    Stem (3x3 conv + BN, optional), then three stages of ``cells_per_stage`` cells at ``C``, ``2C``,
    ``4C`` channels with a :class:`ResNetReduction` between stages, then BN + ReLU, global average
    pooling and a linear classifier. Parameters of the cell stack (cells and reduction blocks) live
    under ``cells.``.

    Args:
        mask: active ops per edge (see :func:`single_path_mask`, :func:`full_mask`).
        width: ``C``, the channels of the first stage.
        cells_per_stage: ``N``.
        num_classes: classifier outputs.
        in_channels: input image channels.
        stem: whether to start with the 3x3 stem conv. Without it the input must already have
            ``width`` channels.
        num_stages: 3 for the NB201 network; 1 gives the single-stage network used for E.
    """

    def __init__(
        self,
        mask: EdgeMask,
        *,
        width: int,
        cells_per_stage: int,
        num_classes: int,
        in_channels: int = 3,
        stem: bool = True,
        num_stages: int = 3,
    ) -> None:
        super().__init__()
        if width < 1 or cells_per_stage < 1 or num_classes < 1 or in_channels < 1 or num_stages < 1:
            raise ValueError(
                "width, cells_per_stage, num_classes, in_channels and num_stages must be positive, got "
                f"{width}, {cells_per_stage}, {num_classes}, {in_channels}, {num_stages}"
            )
        if not stem and in_channels != width:
            raise ValueError(f"without a stem the input must have width={width} channels, got {in_channels}")
        self.stem = (
            nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), _batch_norm(width))
            if stem
            else nn.Identity()
        )
        layers: list[nn.Module] = []
        channels = width
        for stage in range(num_stages):
            if stage > 0:
                layers.append(ResNetReduction(channels, channels * 2))
                channels *= 2
            layers.extend(NB201Cell(channels, mask) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(_batch_norm(channels), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(out).flatten(1))


def build_network(
    arch: NB201Arch | EdgeMask,
    *,
    width: int = 16,
    cells_per_stage: int = 5,
    num_classes: int = 10,
    in_channels: int = 3,
) -> NB201Network:
    """The NB201 network for ``arch`` (or a supernet ``mask``); NB201's own is C=16, N=5."""
    mask = single_path_mask(arch) if isinstance(arch, NB201Arch) else arch
    return NB201Network(
        mask, width=width, cells_per_stage=cells_per_stage, num_classes=num_classes, in_channels=in_channels
    )


def build_thin_network(arch: NB201Arch | EdgeMask, *, width: int = 1, num_classes: int = 10) -> NB201Network:
    """The thin network for E: one cell at ``width`` channels, no stem, then BN+ReLU, pool, classifier."""
    mask = single_path_mask(arch) if isinstance(arch, NB201Arch) else arch
    return NB201Network(
        mask, width=width, cells_per_stage=1, num_classes=num_classes, in_channels=width, stem=False, num_stages=1
    )
