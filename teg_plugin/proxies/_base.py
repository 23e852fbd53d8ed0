"""What every zero-cost proxy is given and returns, and the helpers several proxies share.

A proxy is a function of one architecture's network at initialisation (and, for most, of one batch
of the scorer's fixed training images). It never trains and never reads a benchmark accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from teg_plugin._proxy_table import PROXY_HIGHER_IS_BETTER

#: A layer of :data:`WEIGHT_LAYERS`.
WeightLayer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear
#: Modules whose weights the layer-wise proxies (synflow, snip, grasp, fisher, grad_norm, l2_norm)
#: sum over, as NAS-Bench-Suite-Zero does: convolutions and linear layers (not BatchNorm).
WEIGHT_LAYERS: tuple[type[WeightLayer], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class NonFiniteProxy(ArithmeticError):
    """A proxy's value, or a quantity it needs, is NaN or infinite: the architecture is flagged."""


@dataclass(frozen=True)
class ProxyInputs:
    """What a proxy computes on, for one architecture.

    Args:
        network: returns a fresh copy of the architecture's network, initialised name-seeded (the
            scorer's ``init`` scheme), in train mode, on ``device``; a proxy may modify its copy.
        meta_network: returns the same network built on PyTorch's ``meta`` device: shapes and
            parameter counts without any weight values (``params``, ``flops``).
        x: the batch of training images, normalised, ``(batch, channels, height, width)``, on ``device``.
        y: their labels ``(batch,)``, on ``device``.
        num_classes: the task's classes (the network's logits).
        seed: the root of any random draw a proxy makes itself (zen's Gaussian inputs and weights).
        device: where the proxy computes.
    """

    network: Callable[[], nn.Module]
    meta_network: Callable[[], nn.Module]
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    seed: int
    device: torch.device

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input image."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]


@dataclass(frozen=True)
class Proxy:
    """One zero-cost proxy.

    Args:
        name: its name, as NAS-Bench-Suite-Zero spells it (``synflow``, ``nwot``, ...).
        compute: its value for one architecture (see :class:`ProxyInputs`); raises
            :class:`NonFiniteProxy` for a network it is undefined on.
        needs_data: whether it reads the training batch (``False``: weights or shapes only).
        summary: one line for help texts.

    Its name must be one of :data:`teg_plugin._proxy_table.PROXY_HIGHER_IS_BETTER`, the torch-free
    table that also gives its direction (:attr:`higher_is_better`) to rank rules.

    Raises:
        ValueError: a name the table does not list.
    """

    name: str
    compute: Callable[[ProxyInputs], float]
    needs_data: bool
    summary: str

    def __post_init__(self) -> None:
        if self.name not in PROXY_HIGHER_IS_BETTER:
            raise ValueError(
                f"proxy {self.name!r} is not listed in teg_plugin._proxy_table.PROXY_HIGHER_IS_BETTER; "
                "add it there with its direction"
            )

    @property
    def higher_is_better(self) -> bool:
        """The direction in which it predicts accuracy (every proxy here: higher)."""
        return PROXY_HIGHER_IS_BETTER[self.name]

    def __call__(self, inputs: ProxyInputs) -> float:
        return self.compute(inputs)


def weight_layers(net: nn.Module) -> Iterator[WeightLayer]:
    """The convolution and linear layers of ``net``, in module order."""
    return (m for m in net.modules() if isinstance(m, WEIGHT_LAYERS))


def layer_weights(net: nn.Module) -> list[torch.Tensor]:
    """The weights of :func:`weight_layers`, in module order (a parameter shared by two layers once)."""
    seen: dict[int, torch.Tensor] = {}
    for layer in weight_layers(net):
        seen.setdefault(id(layer.weight), layer.weight)
    return list(seen.values())


def cross_entropy_gradients(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, weights: list[torch.Tensor], *, create_graph: bool = False
) -> tuple[torch.Tensor, ...]:
    """Gradients of the mean cross-entropy of ``net`` on ``(x, y)`` w.r.t. ``weights`` (zeros for an
    unused weight, e.g. the conv of an op no path reaches)."""
    loss = nn.functional.cross_entropy(net(x), y)
    check_finite(loss, "the loss")
    grads = torch.autograd.grad(loss, weights, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(w) if g is None else g for w, g in zip(weights, grads))


def input_jacobian(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Row ``i``: the gradient of the sum of every logit of the batch w.r.t. image ``i``, flattened
    ``(batch, -1)``, as Mellor et al. compute it (one backward pass of the summed logits). With
    train-mode BatchNorm, image ``i`` also moves the other images' logits through the batch
    statistics; that coupling is part of the definition."""
    x = x.detach().clone().requires_grad_(True)
    out = net(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.reshape(grad.shape[0], -1)


def check_finite(value: torch.Tensor | float, what: str) -> None:
    """Raise :class:`NonFiniteProxy` when ``value`` holds a NaN or an infinity."""
    if isinstance(value, torch.Tensor):
        if not bool(torch.isfinite(value).all()):
            raise NonFiniteProxy(f"{what} is not finite")
    elif not math.isfinite(value):
        raise NonFiniteProxy(f"{what} is {value}")


def finite(value: Any, what: str) -> float:
    """``value`` as a float, or :class:`NonFiniteProxy` when it is NaN or infinite."""
    number = float(value)
    check_finite(number, what)
    return number


def without_batch_norm(net: nn.Module) -> nn.Module:
    """``net`` with every BatchNorm layer replaced by an identity, in place; returns ``net``."""
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, child_name, nn.Identity())
    return net
