"""TE-NAS supernets of any NNI 3.0 model space: every kept candidate of each choice active, their
outputs averaged.

:func:`build_supernet` turns a copy of the model space (the module NNI dry-runs, holding every
candidate) into the supernet of a mask, choice by choice:

* a ``LayerChoice`` runs each kept candidate on its input and averages the outputs;
* an ``InputChoice`` averages the reduced inputs (``sum``, ``mean`` or ``concat``) of each kept
  subset (with ``n_chosen=1``: the mean of the kept inputs);
* an ``nni.choice`` given to a ``Mutable*`` layer (any ``ParametrizedModule``, e.g.
  ``MutableConv2d(..., kernel_size=nni.choice("k", [3, 5]), padding=...)``) builds the layer once
  per kept combination of its choices and averages their outputs.

A choice cannot be put in a supernet when its kept candidates give outputs of different shapes
(a width choice, a stride choice...), when it is read by other code (a mutable registered with
``add_mutable`` and used by the space itself, a ``Repeat`` depth...), or for an ``InputChoice`` with
``reduction="none"``. :func:`supernet_problem` finds the first such choice and says why, in one line.

An option's modules keep the same names whatever else is kept (a ``LayerChoice`` candidate keeps
its name in the model space, a ``Mutable*`` layer's variants are named after their values), so
the protocol's name-seeded initialisation gives an option the same weights in every mask.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ParametrizedModule
from nni.nas.nn.pytorch.choice import ChosenInputs
from torch import nn

from teg_plugin.spaces._supernet import mean_of_outputs

#: A mask in NNI's terms: label -> the sample values kept (an ``InputChoice``'s are index lists).
KeptValues = Mapping[str, Sequence[Any]]


#: NNI's model context (which ``Mutable*`` layers and model spaces read while they are built) is one
#: per process, and the scorer builds the networks of several repeats in parallel threads: every
#: build of a model space or supernet holds this lock.
BUILD_LOCK = threading.RLock()


class SupernetError(ValueError):
    """A choice of the model space cannot be put in a supernet (the message names it)."""


def _mean_checked(label: str, names: Sequence[str], outputs: Sequence[Any]) -> torch.Tensor:
    shapes = [tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__ for out in outputs]
    if any(not isinstance(out, torch.Tensor) for out in outputs) or len(set(shapes)) > 1:
        listed = ", ".join(f"{name} -> {shape}" for name, shape in zip(names, shapes, strict=True))
        raise SupernetError(
            f"choice {label!r} cannot be put in a supernet: its candidates' outputs cannot be averaged ({listed})"
        )
    return mean_of_outputs(outputs)


class MeanOfCandidates(nn.Module):
    """The kept candidates of one choice, each run on the same inputs, outputs averaged."""

    def __init__(self, label: str, candidates: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.label = label
        for name, module in candidates.items():
            self.add_module(name, module)

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        names = list(self._modules)
        return _mean_checked(self.label, names, [module(*args, **kwargs) for module in self.children()])

    def extra_repr(self) -> str:
        return f"label={self.label!r}"


class MeanOfInputs(nn.Module):
    """An ``InputChoice``'s kept subsets, each reduced as the choice reduces it, then averaged."""

    def __init__(self, label: str, subsets: Sequence[Sequence[int]], reduction: str) -> None:
        super().__init__()
        self.label = label
        self.subsets = [list(subset) for subset in subsets]
        self.reduction = reduction

    def forward(self, candidate_inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        outputs = [
            ChosenInputs._tensor_reduction(self.reduction, [candidate_inputs[i] for i in subset])
            for subset in self.subsets
        ]
        return _mean_checked(self.label, [str(subset) for subset in self.subsets], outputs)

    def extra_repr(self) -> str:
        return f"label={self.label!r}, subsets={self.subsets}, reduction={self.reduction!r}"


def build_supernet(model_space: nn.Module, kept: KeptValues) -> nn.Module:
    """The supernet of ``model_space`` (a ``ModelSpace`` as NNI dry-runs it; copied, never
    modified) in which the ``kept`` values of each choice are active.

    Raises:
        SupernetError: an ``InputChoice`` with ``reduction="none"``, or a ``Mutable*`` layer that
            cannot be built for a kept value.
    """
    with BUILD_LOCK:
        return _Converter(kept).convert(copy.deepcopy(model_space))


def supernet_problem(model_space: nn.Module, kept: KeptValues, images: torch.Tensor) -> str | None:
    """Why ``model_space`` has no supernet for ``kept`` (one line naming the choice), or ``None``
    when its supernet builds and runs on ``images``."""
    converter = _Converter(kept)
    try:
        with BUILD_LOCK:
            network = converter.convert(copy.deepcopy(model_space))
    except SupernetError as err:
        return str(err)
    unused = [label for label in kept if label not in converter.consumed]
    if unused:
        return (
            f"choice {unused[0]!r} cannot be put in a supernet: only LayerChoice, InputChoice and nni.choice "
            "arguments of Mutable* layers can (it is read by other code, e.g. a mutable registered with add_mutable "
            "or a Repeat depth)"
        )
    try:
        with torch.no_grad():
            network(images)
    except SupernetError as err:
        return str(err)
    except RuntimeError as err:  # PyTorch's: e.g. a later layer that cannot take an averaged output
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"the supernet of every kept candidate does not run on the protocol's images ({first})"
    return None


class _Converter:
    """Replaces the choices of a copied model space with their supernet modules."""

    def __init__(self, kept: KeptValues) -> None:
        self.kept = {label: list(values) for label, values in kept.items()}
        self.consumed: set[str] = set()

    def convert(self, module: nn.Module) -> nn.Module:
        if isinstance(module, LayerChoice):
            return self._layer_choice(module)
        if isinstance(module, InputChoice):
            return self._input_choice(module)
        if isinstance(module, ParametrizedModule) and module.mutables:
            return self._parametrized(module)
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = self.convert(child)
        return module

    def _values(self, label: str) -> list[Any]:
        if label not in self.kept:
            raise SupernetError(f"choice {label!r} of the model space is not in the mask")
        self.consumed.add(label)
        return self.kept[label]

    def _layer_choice(self, choice: LayerChoice) -> nn.Module:
        kept = self._values(choice.label)
        candidates = {str(name): self.convert(choice[name]) for name in choice.names if name in kept}
        if not candidates:
            raise SupernetError(f"choice {choice.label!r}: no kept candidate among {list(choice.names)}")
        return MeanOfCandidates(choice.label, candidates)

    def _input_choice(self, choice: InputChoice) -> nn.Module:
        if choice.reduction == "none":
            raise SupernetError(
                f"choice {choice.label!r} cannot be put in a supernet: an InputChoice with reduction='none' returns "
                "a list, which cannot be averaged"
            )
        subsets = [value if isinstance(value, list) else [value] for value in self._values(choice.label)]
        return MeanOfInputs(choice.label, subsets, choice.reduction)

    def _parametrized(self, module: ParametrizedModule) -> nn.Module:
        labels = list(dict.fromkeys(label for mutable in module.mutables for label in mutable.simplify()))
        options = [self._values(label) for label in labels]
        variants = {}
        for combo in itertools.product(*options):
            sample = dict(zip(labels, combo, strict=True))
            try:
                variant = module.freeze(sample)
            except Exception as err:  # the user's layer, built for a value: whatever it raises
                raise SupernetError(
                    f"choice {labels[0]!r} cannot be put in a supernet: {type(module).__name__} fails for {sample} ({err})"
                ) from err
            variants[_variant_name(sample)] = self.convert(variant)
        return MeanOfCandidates(", ".join(labels), variants)


def _variant_name(sample: Mapping[str, Any]) -> str:
    """A module name for a ``Mutable*`` layer built at ``sample`` (no dots, which module names forbid)."""
    text = ",".join(f"{label}={json.dumps(value, default=repr)}" for label, value in sample.items())
    return re.sub(r"[.\s]", "_", text)
