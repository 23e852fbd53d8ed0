"""The DARTS cell space as an NNI 3.0 ``ModelSpace`` whose samples are exactly our DARTS genotypes.

:class:`DartsModelSpace` declares one ``nni.choice`` per entry of
:meth:`DartsSpace.choices() <teg_plugin.spaces.darts.DartsSpace.choices>`: the label is the choice's
name (``"normal/node3/inputs"``, ``"normal/node3/op0"``, ...; 22 in all) and the values are its
options in order (``"0+1"``, ``"0+2"``, ... for an ``inputs`` choice; the seven genotype ops for an
``op`` choice). An NNI sample is therefore the flat dict of :meth:`DartsSpace.to_params` and maps 1:1
to a canonical :class:`~teg_plugin.spaces.darts.DartsGenotype` (:func:`genotype_from_sample`,
:func:`sample_from_genotype`). A frozen model is DARTS's evaluation network of that genotype
(:func:`~teg_plugin.spaces.darts.build_eval_network`), a plain ``nn.Module``.

NNI's own ``nni.nas.hub.pytorch.DARTS`` is *not* used, and its labels do **not** map exactly. It
cannot be imported here without PyTorch Lightning (``nni.nas.hub.pytorch`` imports
``nni.nas.oneshot``, which imports ``pytorch_lightning``), so its labels were read from NNI 3.0's
source (``nni/nas/nn/pytorch/cell.py``, ``nni/nas/hub/pytorch/nasnet.py``), not from a built model:
each cell type (``normal``, ``reduce``) has, for node ``i = 2..5`` and its ``k``-th input ``k = 0, 1``,
an op ``"{cell}/op_{i}_{k}"`` (the same seven op names as ours) and an input
``"{cell}/input_{i}_{k}"`` (an ``InputChoice`` whose sample is a one-element list ``[j]``), plus
``"width"`` and ``"depth"`` choices when those are given as tuples. Each of a node's two inputs is
chosen separately, so the hub can sample a node whose two inputs are the same node, which is not a
DARTS genotype. :func:`genotype_from_hub_sample` converts a hub sample (such as the one NNI's
``DARTS.load_searched_model("darts-v2")`` uses) to our genotype.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any, NoReturn

import nni
from nni.mutable.utils import label_scope
from nni.nas.nn.pytorch import ModelSpace
from torch import nn

from teg_plugin.nni._space import freeze_in_context
from teg_plugin.spaces.darts import DartsGenotype, DartsSpace, GenotypeError, as_genotype, build_eval_network
from teg_plugin.spaces.darts._genotype import CELLS, NODES, cell_of, node_of

_SPACE = DartsSpace()

#: Width (``C``) and cells of a frozen model unless given: DARTS's search-phase network size, small
#: enough to train on a CPU (DARTS's CIFAR-10 evaluation network is ``width=36, layers=20``).
DEFAULT_WIDTH = 16
DEFAULT_LAYERS = 8


def genotype_from_sample(sample: Mapping[str, Any]) -> DartsGenotype:
    """The canonical DARTS genotype of an NNI sample of :class:`DartsModelSpace` (extra keys, e.g.
    those of a mutable evaluator, are ignored).

    Raises:
        GenotypeError: a choice is missing or a value is not one of its options (a ``ValueError``
            naming them).

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V2
        >>> genotype_from_sample({**sample_from_genotype(DARTS_V2), "lr": 0.1}) == DARTS_V2.canonical()
        True
    """
    names = _SPACE.choices()
    return _SPACE.from_params({name: sample[name] for name in names if name in sample})


def sample_from_genotype(genotype: DartsGenotype | str) -> dict[str, str]:
    """The NNI sample of ``genotype`` (a :class:`DartsGenotype` or its ``Genotype(...)`` text): its
    canonical form as the flat choice dict.

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V2
        >>> sample = sample_from_genotype(DARTS_V2.format())
        >>> sample["normal/node5/inputs"], sample["normal/node5/op0"], sample["normal/node5/op1"]
        ('0+2', 'skip_connect', 'dil_conv_3x3')
    """
    return _SPACE.to_params(as_genotype(genotype))


_HUB_LABEL = re.compile(r"^(?:.*/)?(normal|reduce)/(op|input)_(\d+)_(\d+)$")


def genotype_from_hub_sample(sample: Mapping[str, Any]) -> DartsGenotype:
    """The canonical DARTS genotype of a sample of NNI's ``nni.nas.hub.pytorch.DARTS``.

    Reads the labels ``{cell}/op_{i}_{k}`` (an op name) and ``{cell}/input_{i}_{k}`` (``[j]``, or
    ``j``) for nodes ``i = 2..5`` and ``k = 0, 1``, both cells; other labels (``width``, ``depth``)
    are ignored.

    Raises:
        GenotypeError: a label is missing, or the sample is no DARTS genotype (e.g. a node whose two
            inputs are the same node, which the hub can sample).

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V1
        >>> hub = {}
        >>> for cell in ("normal", "reduce"):
        ...     for i, node in zip(range(2, 6), DARTS_V1.cell(cell)):
        ...         for k, (op, j) in enumerate(node):
        ...             hub[f"{cell}/op_{i}_{k}"], hub[f"{cell}/input_{i}_{k}"] = op, [j]
        >>> genotype_from_hub_sample({**hub, "width": 16}) == DARTS_V1.canonical()
        True
    """
    found: dict[tuple[str, str, int, int], Any] = {}
    for label, value in sample.items():
        match = _HUB_LABEL.match(str(label))
        if match is not None:
            cell, kind, node, side = match.group(1), match.group(2), int(match.group(3)), int(match.group(4))
            found[(cell, kind, node, side)] = value
    missing = [
        f"{cell}/{kind}_{node}_{side}"
        for cell in CELLS
        for node in NODES
        for side in (0, 1)
        for kind in ("op", "input")
        if (cell, kind, node, side) not in found
    ]
    if missing:
        raise GenotypeError(f"not a sample of NNI's DARTS hub space: missing {', '.join(missing)}")
    cells = []
    for cell in CELLS:
        nodes = []
        for node in NODES:
            pairs = []
            for side in (0, 1):
                source = found[(cell, "input", node, side)]
                if isinstance(source, (list, tuple)):
                    if len(source) != 1:
                        raise GenotypeError(f"{cell}/input_{node}_{side}: expected one input [j], got {source!r}")
                    source = source[0]
                pairs.append((found[(cell, "op", node, side)], source))
            nodes.append(node_of(pairs))
        cells.append(cell_of(nodes))
    return DartsGenotype(*cells).canonical()


def _choice(name: str, options: tuple[str, ...]) -> Any:
    """``nni.choice`` labelled ``name``: NNI refuses ``/`` in a label, so the parts before the last
    ``/`` become nested label scopes (``"normal/node3/op0"`` -> scopes ``normal``, ``node3``)."""
    *scopes, basename = name.split("/")
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(label_scope(scope))
        return nni.choice(basename, list(options))


class DartsModelSpace(ModelSpace):
    """The DARTS cell space as an NNI ``ModelSpace``: one ``nni.choice`` per DARTS choice.

    Args:
        width: ``C`` of the frozen evaluation network (default 16; DARTS's CIFAR-10 evaluation: 36).
        layers: cells of the frozen network, the ones at ``layers // 3`` and ``2 * layers // 3``
            being reduction cells (default 8; DARTS's evaluation: 20).
        num_classes: classifier outputs.
        in_channels: input image channels.
        auxiliary: add DARTS's auxiliary head (then, in training mode, the model returns
            ``(logits, auxiliary_logits)``; it expects 32x32 inputs).

    The defaults give a small network (DARTS's search-phase size, about 0.25M parameters for
    DARTS_V2) that trains on a CPU; pass ``width=36, layers=20`` for the network DARTS reports
    (3.3M parameters for DARTS_V2). These settings only shape the model you train: the evaluator
    scores the genotype on the DARTS proxy networks of its own protocol.

    The space itself holds no network (``forward`` raises). Freezing a sample
    (``model_space.freeze(sample)``, or NNI's simplified format re-creating the model in a model
    context) gives :func:`~teg_plugin.spaces.darts.build_eval_network` of
    :func:`genotype_from_sample`: a fresh, plain ``nn.Module`` with no NNI in it, whose parameter
    count is :func:`~teg_plugin.spaces.darts.count_parameters` of the genotype at these settings.

    Example:
        >>> from teg_plugin.spaces.darts import DARTS_V2, count_parameters
        >>> space = DartsModelSpace(width=4, layers=3)
        >>> len(space.simplify()), list(space.simplify())[:3]
        (22, ['normal/node2/op0', 'normal/node2/op1', 'normal/node3/inputs'])
        >>> model = space.freeze(sample_from_genotype(DARTS_V2))
        >>> n_params = sum(p.numel() for p in model.parameters())
        >>> type(model).__name__, n_params == count_parameters(DARTS_V2, width=4, layers=3)
        ('DartsEvalNetwork', True)
    """

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        layers: int = DEFAULT_LAYERS,
        num_classes: int = 10,
        in_channels: int = 3,
        auxiliary: bool = False,
    ) -> None:
        super().__init__()
        if min(width, layers, num_classes, in_channels) < 1:
            raise ValueError(
                f"width, layers, num_classes and in_channels must be positive, got {width}, {layers}, "
                f"{num_classes}, {in_channels}"
            )
        self.choice_names = tuple(_SPACE.choices())
        self.darts_choices = [self.add_mutable(_choice(name, options)) for name, options in _SPACE.choices().items()]

    @classmethod
    def create_fixed_module(
        cls,
        sample: dict,
        width: int = DEFAULT_WIDTH,
        layers: int = DEFAULT_LAYERS,
        num_classes: int = 10,
        in_channels: int = 3,
        auxiliary: bool = False,
    ) -> nn.Module:
        """The network of ``sample`` (called by NNI when the space is built inside a model context)."""
        return build_eval_network(
            genotype_from_sample(sample),
            width=width,
            layers=layers,
            num_classes=num_classes,
            in_channels=in_channels,
            auxiliary=auxiliary,
        )

    def freeze(self, sample: dict[str, Any]) -> nn.Module:
        """The network of ``sample``: DARTS's evaluation network of that genotype."""
        return freeze_in_context(self, sample)

    def forward(self, x: object) -> NoReturn:
        raise NotImplementedError(
            "a DartsModelSpace is a space of DARTS genotypes, not a network: freeze(sample) gives the network of "
            "one genotype (teg_plugin.nni.sample_from_genotype(genotype) gives its sample)"
        )
