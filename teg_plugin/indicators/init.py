"""Name-seeded initialisation: the same parameter name and seed always get the same values.

Every parameter draws its values from its own generator, seeded from ``(seed, name)``. A network
built from any subset of a supernet's modules, under the supernet's module names, therefore holds
exactly the weights that the supernet initialised with that seed would hold: the same op on the same
edge has the same initial weights in every architecture, whatever else the architecture contains.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import nn

from teg_plugin.config import INIT_SCHEMES, LEGACY_INIT

_CONV_OR_LINEAR = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` that is the same in every process and on every machine."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generator(seed: int, name: str) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(stable_seed(seed, name))
    return gen


@torch.no_grad()
def init_network(model: nn.Module, seed: int, scheme: str = INIT_SCHEMES[0]) -> nn.Module:
    """Initialise ``model`` in place, deterministically per parameter name; returns ``model``.

    Conv and linear layers, by ``scheme``:

    * ``"torch-default"`` (the default): weights and biases uniform in ``±1/sqrt(fan_in)``, the
      distribution of PyTorch's own layer initialisation (Kaiming uniform with ``a = sqrt(5)``),
      which TE-NAS's and TEG-NAS's released code end up running;
    * ``"kaiming-normal"``: weights Kaiming normal, fan-in, ReLU gain (std = sqrt(2 / fan_in));
      biases 0 (the initialisation the paper's text names).

    Normalisation layers: weight 1, bias 0. Any other parameter keeps its values. Values are drawn
    on the CPU and copied to the parameter's device, so they do not depend on it.

    Raises:
        ValueError: an unknown ``scheme``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown initialisation scheme {scheme!r}; choose from {', '.join(INIT_SCHEMES)}")
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, _CONV_OR_LINEAR):
            weight = module.weight
            fan_in = weight[0].numel()
            if scheme == LEGACY_INIT:  # kaiming-normal
                values = torch.randn(weight.shape, generator=_generator(seed, prefix + "weight"), dtype=torch.float32)
                weight.copy_(values.mul_(math.sqrt(2.0) / math.sqrt(fan_in)))
                if module.bias is not None:
                    module.bias.zero_()
            else:
                bound = 1.0 / math.sqrt(fan_in)
                for name, param in (("weight", weight), ("bias", module.bias)):
                    if param is not None:
                        values = torch.rand(param.shape, generator=_generator(seed, prefix + name), dtype=torch.float32)
                        param.copy_(values.mul_(2.0 * bound).sub_(bound))
        elif isinstance(module, _NORM):
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
    return model
