"""How a supernet edge combines its active options (shared by every space's networks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn


def edge_mean(ops: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The mean of ``ops`` applied to ``x``; a single op's output is returned unchanged, bit for bit.

    A DARTS-style supernet weights an edge's ops by a softmax over the ops not yet pruned, i.e.
    uniformly over the active ones (TE-NAS prunes by setting a pruned op's logit to -inf), so an
    architecture (one op per edge) is the plain network.
    """
    outputs = [op(x) for op in ops]
    if not outputs:
        raise ValueError("an edge without active ops has no output; skip the edge instead")
    return mean_of_outputs(outputs)


def mean_of_outputs(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of the active options' ``outputs`` (summed in order, then divided; one output is
    returned unchanged, bit for bit)."""
    total = outputs[0]
    for out in outputs[1:]:
        total = total + out
    return total if len(outputs) == 1 else total / len(outputs)
