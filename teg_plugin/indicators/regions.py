"""Linear regions (E): distinct activation patterns of a network's piecewise-linear units.

Every ReLU output unit of the network splits input space into an on and an off side; an input's
*pattern* is the on/off state of all units together. Inputs with different patterns lie in different
linear regions, so the number of distinct patterns over a set of inputs counts the regions it visits.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from teg_plugin.indicators.ntk import NonFiniteError

#: Activation modules whose on/off states form the pattern.
RELU_FAMILY: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ReLU6)


class NoReLUError(ValueError):
    """The network has no ReLU-family activation modules, so it has no activation patterns."""


@contextmanager
def recording_patterns(model: nn.Module, keep: Iterable[str] | None = None) -> Iterator[list[torch.Tensor]]:
    """While active, every forward of ``model`` appends one ``(batch, units)`` bool tensor per unit.

    Records the on/off state (input > 0) of each ReLU-family module, in call order; for ReLU6 the
    upper knee (input > 6) is recorded as a second bit. ``keep`` restricts recording to the modules
    with those names. Hooks are always removed on exit.

    Raises:
        NoReLUError: if no ReLU-family module is selected.
        NonFiniteError: (from the forward pass) if a recorded activation's input is NaN or inf, whose
            on/off state is undefined.
    """
    wanted = None if keep is None else set(keep)
    records: list[torch.Tensor] = []
    handles = []

    # A pre-hook sees the input before the module runs: an in-place activation (ReLU6(inplace=True),
    # as in MobileNet) overwrites it, which would hide ReLU6's upper knee from a forward hook.
    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach().flatten(1)
        if not torch.isfinite(x).all():
            raise NonFiniteError("the network produced non-finite activations (linear regions undefined)")
        records.append(x > 0)
        if isinstance(module, nn.ReLU6):
            records.append(x > 6)

    try:
        for name, module in model.named_modules():
            if isinstance(module, RELU_FAMILY) and (wanted is None or name in wanted):
                handles.append(module.register_forward_pre_hook(hook))
        if not handles:
            raise NoReLUError(
                f"{type(model).__name__} has no ReLU-family activation modules ({', '.join(c.__name__ for c in RELU_FAMILY)}); "
                "the linear-region count (E) needs them"
            )
        yield records
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def activation_patterns(model: nn.Module, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """The ``(inputs, units)`` bool pattern matrix of ``model`` over all ``batches`` (one forward each)."""
    rows = []
    with recording_patterns(model) as records:
        for batch in batches:
            records.clear()
            model(batch)
            rows.append(torch.cat(records, dim=1))
    return torch.cat(rows, dim=0)


def count_distinct_patterns(patterns: torch.Tensor) -> int:
    """Number of distinct rows of a bool pattern matrix."""
    if patterns.dim() != 2:
        raise ValueError(f"patterns must be a 2-D (inputs, units) matrix, got shape {tuple(patterns.shape)}")
    if patterns.shape[1] == 0:
        return 1 if patterns.shape[0] else 0
    return int(torch.unique(patterns.to(torch.uint8), dim=0).shape[0])
