"""NAS-Bench-201 as an NNI 3.0 ``ModelSpace`` whose samples are exactly our NB201 architectures.

The space declares one ``nni.choice`` per edge: the label is the edge name of
:data:`~teg_plugin.spaces.nb201.EDGE_NAMES` (``"1<-0"`` ... ``"3<-2"``) and the values are
:data:`~teg_plugin.spaces.nb201.OPS` in that order. An NNI sample is therefore the flat dict of
:meth:`NB201Space.to_params` and maps 1:1 to an arch string. A frozen model is our own
:class:`~teg_plugin.spaces.nb201.NB201Network` of that architecture (NB201's macro skeleton), with
the same module names the scorer uses.

NNI's own ``nni.nas.hub.pytorch.NasBench201`` is *not* used: its labels are ``cell/{i}_{j}`` (edge
``i -> j``), its convolutions are called ``conv_1x1``/``conv_3x3`` (not ``nor_conv_*``), and importing
``nni.nas.hub.pytorch`` needs PyTorch Lightning. :func:`arch_from_hub_sample` converts its samples.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import nni
import torch
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import model_context
from torch import nn

from teg_plugin.spaces.nb201 import EDGE_NAMES, OPS, NB201Arch, NB201Network, NB201Space, build_network
from teg_plugin.spaces.nb201._network import full_mask

_SPACE = NB201Space()


def arch_from_sample(sample: Mapping[str, Any]) -> NB201Arch:
    """The NB201 architecture of an NNI sample of :class:`NB201ModelSpace` (extra keys, e.g. those of
    a mutable evaluator, are ignored); ``ValueError`` naming a missing edge or unknown op."""
    return _SPACE.from_params({edge: sample[edge] for edge in EDGE_NAMES if edge in sample})


def sample_from_arch(arch: NB201Arch | str) -> dict[str, str]:
    """The NNI sample of ``arch`` (an :class:`NB201Arch` or an arch string)."""
    if isinstance(arch, str):
        arch = _SPACE.parse(arch)
    return _SPACE.to_params(arch)


_HUB_LABEL = re.compile(r"^(?:.*/)?(\d)_(\d)$")
_HUB_OPS = {"conv_1x1": "nor_conv_1x1", "conv_3x3": "nor_conv_3x3"}


def arch_from_hub_sample(sample: Mapping[str, Any]) -> NB201Arch:
    """The NB201 architecture of a sample of NNI's ``nni.nas.hub.pytorch.NasBench201``.

    Its labels are ``cell/{i}_{j}`` for the edge from node ``i`` into node ``j`` (our ``"j<-i"``) and
    its ops ``conv_1x1``/``conv_3x3`` are our ``nor_conv_1x1``/``nor_conv_3x3``; every cell shares the
    one choice per edge, as in NAS-Bench-201.

    Example:
        >>> sample = {f"cell/{i}_{j}": "conv_3x3" for j in range(1, 4) for i in range(j)}
        >>> str(arch_from_hub_sample(sample)).count("nor_conv_3x3")
        6
    """
    params: dict[str, str] = {}
    for label, op in sample.items():
        match = _HUB_LABEL.match(str(label))
        if match is None:
            continue
        source, target = int(match.group(1)), int(match.group(2))
        params[f"{target}<-{source}"] = _HUB_OPS.get(str(op), str(op))
    return _SPACE.from_params(params)


def freeze_in_context(model_space: ModelSpace, sample: dict[str, Any]) -> nn.Module:
    """``model_space``'s class built anew, with its constructor arguments, under ``sample``'s model
    context: its ``create_fixed_module`` network, a plain ``nn.Module`` sharing nothing with
    ``model_space``."""
    with model_context(sample):
        return type(model_space)(*model_space.trace_args, **model_space.trace_kwargs)


class NB201ModelSpace(ModelSpace):
    """NAS-Bench-201's 15,625 cells as an NNI ``ModelSpace``.

    Args:
        width: ``C``, channels of the first stage (NB201: 16).
        cells_per_stage: ``N`` (NB201: 5).
        num_classes: classifier outputs.
        in_channels: input image channels.

    The space itself (what NNI dry-runs) is the NB201 supernet, every op active on every edge.
    Freezing a sample (``model_space.freeze(sample)``, or NNI's simplified format re-creating the
    model in a model context) gives :func:`~teg_plugin.spaces.nb201.build_network` of
    :func:`arch_from_sample`: a plain ``nn.Module`` with no NNI in it.

    Example:
        >>> space = NB201ModelSpace(width=4, cells_per_stage=1)
        >>> sorted(space.simplify())[:2]
        ['1<-0', '2<-0']
        >>> model = space.freeze(sample_from_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|"))
        >>> type(model).__name__
        'NB201Network'
    """

    def __init__(self, width: int = 16, cells_per_stage: int = 5, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.edge_choices = [self.add_mutable(nni.choice(edge, list(OPS))) for edge in EDGE_NAMES]
        self.supernet = NB201Network(
            full_mask(), width=width, cells_per_stage=cells_per_stage, num_classes=num_classes, in_channels=in_channels
        )

    @classmethod
    def create_fixed_module(
        cls,
        sample: dict,
        width: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> nn.Module:
        """The network of ``sample`` (called by NNI when the space is built inside a model context)."""
        return build_network(
            arch_from_sample(sample),
            width=width,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
        )

    def freeze(self, sample: dict[str, Any]) -> nn.Module:
        """The network of ``sample``: our :class:`NB201Network` of that architecture."""
        return freeze_in_context(self, sample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x)
