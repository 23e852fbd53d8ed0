"""DARTS networks: the cell, TE-NAS's proxy network (T, G) and thin network (E), and DARTS's CIFAR
evaluation network.

Module names say where a module sits in the *supernet*: the op ``sep_conv_3x3`` on edge ``3<-1`` of
the first (normal) cell is ``cells.0.edges.normal/3<-1.sep_conv_3x3``: the edge's module key is its
supernet-mask key, the project-wide ``edges.<choice>.<option>`` convention that the plain reference
implementation (:mod:`teg_plugin.reference.plain`) relies on. Only the ops active in the mask are built and
run (single path), and a module's name never depends on which other ops are active, so a single-path
network holds a subset of the supernet's parameters under the same names and name-seeded
initialisation (:mod:`teg_plugin.indicators.init`) gives an op the same weights in every network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import torch
from torch import nn

from teg_plugin.spaces._supernet import edge_mean
from teg_plugin.spaces.darts._genotype import NODES, DartsGenotype, as_genotype
from teg_plugin.spaces.darts._mask import EDGE_NAMES, cell_edges, check_mask, genotype_mask
from teg_plugin.spaces.darts._ops import FactorizedReduce, ReLUConvBN, batch_norm, make_op

#: Per edge of one cell (``"3<-1"``), the active ops.
EdgeMask = Mapping[str, Sequence[str]]


class DartsCell(nn.Module):
    """One DARTS cell whose edges carry the ops active in ``edges``.

    The two inputs are preprocessed to ``channels`` channels (input 0 by a :class:`FactorizedReduce`
    when the previous cell halved the resolution, else ReLU-1x1 conv-BN; input 1 by ReLU-1x1 conv-BN).
    Node ``k = 2..5`` is the sum over its incoming edges of the mean of each edge's active ops
    (:func:`~teg_plugin.spaces._supernet.edge_mean`), a node without any the zeros
    of its shape; the output concatenates nodes 2..5 (``4 * channels`` channels). In a reduction cell
    the edges from the two inputs have stride 2.

    Args:
        c_prev_prev, c_prev: channels of the cell's inputs 0 and 1.
        channels: ``C``, the channels of each node.
        reduction: whether this cell halves the resolution.
        reduction_prev: whether input 0 has twice input 1's resolution.
        edges: edge name (``"3<-1"``) -> active ops; missing edges carry none.
        cell_type: ``"normal"`` or ``"reduce"`` (default: from ``reduction``): edge modules are keyed
            ``"<cell_type>/<edge>"``.
        running_stats: BatchNorm with running statistics (evaluation) or batch statistics only.
    """

    def __init__(
        self,
        c_prev_prev: int,
        c_prev: int,
        channels: int,
        *,
        reduction: bool,
        reduction_prev: bool,
        edges: EdgeMask,
        cell_type: str | None = None,
        running_stats: bool = False,
    ) -> None:
        super().__init__()
        unknown = sorted(set(edges) - set(EDGE_NAMES))
        if unknown:
            raise ValueError(f"unknown DARTS cell edge(s) {unknown}; expected names like '3<-1'")
        self.reduction = reduction
        self.cell_type = cell_type or ("reduce" if reduction else "normal")
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_prev_prev, channels, running_stats=running_stats)
            if reduction_prev
            else ReLUConvBN(c_prev_prev, channels, running_stats=running_stats)
        )
        self.preprocess1 = ReLUConvBN(c_prev, channels, running_stats=running_stats)
        self.edges = nn.ModuleDict()
        for name in EDGE_NAMES:
            ops = tuple(edges.get(name, ()))
            if ops:
                stride = 2 if reduction and int(name.split("<-")[1]) < 2 else 1
                self.edges[f"{self.cell_type}/{name}"] = nn.ModuleDict(
                    {op: make_op(op, channels, stride, running_stats=running_stats) for op in ops}
                )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in NODES:
            total: torch.Tensor | None = None
            for i in range(k):
                name = f"{self.cell_type}/{k}<-{i}"
                if name not in self.edges:
                    continue
                out = edge_mean(cast(nn.ModuleDict, self.edges[name]).values(), states[i])
                total = out if total is None else total + out
            if total is None:
                shape = states[1][:, :, ::2, ::2] if self.reduction else states[1]
                total = torch.zeros_like(shape)
            states.append(total)
        return torch.cat(states[2:], dim=1)


def stack_cells(
    mask: Mapping[str, Sequence[str]], c_in: int, width: int, reductions: Sequence[bool], *, running_stats: bool = False
) -> tuple[nn.ModuleList, list[int]]:
    """DARTS cells in sequence on a ``c_in``-channel input: cell ``i`` is a reduction cell (doubling
    ``C``, from ``width``) where ``reductions[i]``. Returns the cells and each one's output channels."""
    cells, outputs = [], []
    c_prev_prev = c_prev = c_in
    channels, reduction_prev = width, False
    for reduction in reductions:
        if reduction:
            channels *= 2
        edges = cell_edges(mask, "reduce" if reduction else "normal")
        cells.append(
            DartsCell(
                c_prev_prev,
                c_prev,
                channels,
                reduction=reduction,
                reduction_prev=reduction_prev,
                edges=edges,
                running_stats=running_stats,
            )
        )
        c_prev_prev, c_prev, reduction_prev = c_prev, 4 * channels, reduction
        outputs.append(c_prev)
    return nn.ModuleList(cells), outputs


class DartsNetwork(nn.Module):
    """TE-NAS's DARTS proxy network around cells built from a supernet ``mask``.

    Stem (3x3 conv + BN, optional), then ``cells_per_stage`` normal cells at ``C = width`` and one
    reduction cell at ``2 * width`` (TE-NAS: C=1, N=1, i.e. two cells, stem multiplier 1), then BN +
    ReLU, global average pooling and a linear classifier. BatchNorm is affine and uses batch
    statistics. The cells' parameters live under ``cells.``.

    Args:
        mask: active ops per ``"{cell}/{k}<-{i}"`` key (see :mod:`~teg_plugin.spaces.darts._mask`);
            the normal cells use the ``normal/`` keys, the reduction cell the ``reduce/`` keys.
        width: ``C``.
        cells_per_stage: ``N``, the normal cells before the reduction cell.
        num_classes: classifier outputs.
        in_channels: input image channels.
        stem: whether to start with the stem. Without it the input must have ``width`` channels and
            feeds both inputs of the first cell.

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V2
        >>> net = DartsNetwork(genotype_mask(DARTS_V2), width=1, cells_per_stage=1, num_classes=10)
        >>> net(torch.randn(2, 3, 8, 8)).shape
        torch.Size([2, 10])
        >>> "cells.0.edges.normal/5<-2.dil_conv_3x3" in dict(net.named_modules())
        True
    """

    def __init__(
        self,
        mask: Mapping[str, Sequence[str]],
        *,
        width: int,
        cells_per_stage: int,
        num_classes: int,
        in_channels: int = 3,
        stem: bool = True,
    ) -> None:
        super().__init__()
        if width < 1 or cells_per_stage < 1 or num_classes < 1 or in_channels < 1:
            raise ValueError(
                "width, cells_per_stage, num_classes and in_channels must be positive, got "
                f"{width}, {cells_per_stage}, {num_classes}, {in_channels}"
            )
        if not stem and in_channels != width:
            raise ValueError(f"without a stem the input must have width={width} channels, got {in_channels}")
        self.mask = check_mask(mask)
        self.stem = (
            nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), batch_norm(width, False))
            if stem
            else nn.Identity()
        )
        self.cells, outputs = stack_cells(self.mask, width, width, [False] * cells_per_stage + [True])
        c_prev = outputs[-1]
        self.lastact = nn.Sequential(batch_norm(c_prev, False), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        out = self.lastact(s1)
        return self.classifier(self.global_pooling(out).flatten(1))


class AuxiliaryHead(nn.Module):
    """DARTS's CIFAR auxiliary classifier, fed the 8x8 output of the cell at ``2 * layers // 3``."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        # DARTS's head starts with an in-place ReLU, which would also modify the main path's tensor.
        self.features = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=False),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=False),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class DartsEvalNetwork(nn.Module):
    """DARTS's CIFAR evaluation network of ``genotype`` (``NetworkCIFAR`` in the DARTS code).

    Stem 3x3 conv to ``3 * width`` channels + BN, then ``layers`` cells, the ones at ``layers // 3``
    and ``2 * layers // 3`` being reduction cells that double ``C``, then global average pooling and
    a linear classifier. BatchNorm is affine with running statistics. Drop-path, a training
    regulariser, is not included.

    ``forward`` returns the logits; with ``auxiliary`` in training mode it returns ``(logits,
    auxiliary_logits)`` as DARTS does (the auxiliary head expects 32x32 inputs).
    """

    def __init__(
        self,
        genotype: DartsGenotype | str,
        *,
        width: int = 36,
        layers: int = 20,
        num_classes: int = 10,
        in_channels: int = 3,
        auxiliary: bool = False,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        if min(width, layers, num_classes, in_channels, stem_multiplier) < 1:
            raise ValueError(
                "width, layers, num_classes, in_channels and stem_multiplier must be positive, got "
                f"{width}, {layers}, {num_classes}, {in_channels}, {stem_multiplier}"
            )
        genotype = as_genotype(genotype)
        mask = genotype_mask(genotype)
        #: The genotype this network was built from.
        self.genotype = genotype
        c_stem = stem_multiplier * width
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), batch_norm(c_stem, True))
        self.reductions = (layers // 3, 2 * layers // 3)
        self.cells, outputs = stack_cells(
            mask, c_stem, width, [index in self.reductions for index in range(layers)], running_stats=True
        )
        c_prev, c_auxiliary = outputs[-1], outputs[self.reductions[1]]
        self.auxiliary_head = AuxiliaryHead(c_auxiliary, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        auxiliary_logits = None
        s0 = s1 = self.stem(x)
        for index, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if index == self.reductions[1] and self.auxiliary_head is not None and self.training:
                auxiliary_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits if auxiliary_logits is None else (logits, auxiliary_logits)


def build_eval_network(
    genotype: DartsGenotype | str,
    *,
    width: int = 36,
    layers: int = 20,
    num_classes: int = 10,
    in_channels: int = 3,
    auxiliary: bool = False,
) -> DartsEvalNetwork:
    """DARTS's CIFAR evaluation network of ``genotype`` (DARTS: C=36, 20 layers); ``genotype`` may be
    given as its ``Genotype(...)`` text (e.g. a trial's ``arch`` attribute)."""
    return DartsEvalNetwork(
        genotype, width=width, layers=layers, num_classes=num_classes, in_channels=in_channels, auxiliary=auxiliary
    )


def count_parameters(genotype: DartsGenotype | str, **kwargs: int | bool) -> int:
    """Trainable parameters of :func:`build_eval_network` ``(genotype, **kwargs)``, without the
    auxiliary head (as DARTS reports model sizes).

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V2
        >>> round(count_parameters(DARTS_V2) / 1e6, 1)
        3.3
    """
    net = build_eval_network(genotype, **kwargs)  # type: ignore[arg-type]
    return sum(
        p.numel() for name, p in net.named_parameters() if p.requires_grad and not name.startswith("auxiliary_head.")
    )
