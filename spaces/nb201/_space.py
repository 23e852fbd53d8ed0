"""NAS-Bench-201 as a :class:`~teg_plugin.spaces.SearchSpace`."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import ClassVar

from torch import nn

from teg_plugin.spaces._base import Mask, SearchSpace
from teg_plugin.spaces.nb201 import _index, _isomorphism, _moves
from teg_plugin.spaces.nb201._arch import NB201Arch
from teg_plugin.spaces.nb201._network import NB201Cell, NB201Network


class NB201Space(SearchSpace[NB201Arch]):
    """The 15,625 cells of NAS-Bench-201 (5 ops on 6 edges).

    Example:
        >>> import random
        >>> space = NB201Space()
        >>> arch = space.sample(random.Random(0))
        >>> space.parse(space.format(arch)) == arch
        True
        >>> space.from_params(space.to_params(arch)) == arch
        True
    """

    name: ClassVar[str] = "nas-bench-201"
    #: NAS-Bench-201 trains every cell in a C=16, N=5 network.
    evaluation_network: ClassVar[Mapping[str, int]] = {"width": 16, "cells_per_stage": 5}

    def parse(self, text: str) -> NB201Arch:
        return NB201Arch.parse(text)

    def format(self, arch: NB201Arch) -> str:
        return arch.to_str()

    def canonical(self, arch: NB201Arch) -> NB201Arch:
        return _isomorphism.canonical_arch(arch)

    def sample(self, rng: random.Random) -> NB201Arch:
        return _moves.sample(rng)

    def mutate(self, arch: NB201Arch, rng: random.Random) -> NB201Arch:
        return _moves.mutate(arch, rng)

    def neighbours(self, arch: NB201Arch) -> list[NB201Arch]:
        return _moves.neighbours(arch)

    def choices(self) -> dict[str, tuple[str, ...]]:
        return _moves.choices()

    def to_params(self, arch: NB201Arch) -> dict[str, str]:
        return _moves.to_params(arch)

    def from_params(self, params: Mapping[str, str]) -> NB201Arch:
        return _moves.from_params(params)

    def index(self, arch: NB201Arch) -> int:
        return _index.index_of(arch)

    def arch_at(self, index: int) -> NB201Arch:
        """The architecture with NB201 index ``index``.

        Raises:
            TypeError: ``index`` is not an integer.
            IndexError: ``index`` is outside ``0 .. 15624``.
        """
        return _index.arch_at(index)

    def build_proxy_network(
        self, mask: Mask, *, width: int, cells_per_stage: int, num_classes: int, in_channels: int = 3
    ) -> NB201Network:
        return NB201Network(
            mask, width=width, cells_per_stage=cells_per_stage, num_classes=num_classes, in_channels=in_channels
        )

    def build_thin_network(self, mask: Mask, *, width: int, num_classes: int) -> NB201Network:
        return NB201Network(
            mask, width=width, cells_per_stage=1, num_classes=num_classes, in_channels=width, stem=False, num_stages=1
        )

    def arch_of_network(self, network: nn.Module) -> NB201Arch | None:
        """The architecture of an :class:`NB201Network` with one op per edge, else ``None``."""
        if not isinstance(network, NB201Network) or not len(network.cells):
            return None
        cell = next((layer for layer in network.cells if isinstance(layer, NB201Cell)), None)
        if cell is None or any(len(ops) != 1 for ops in cell.mask.values()):
            return None
        return self.arch_from_mask(cell.mask)

    def generalization_parameter(self, name: str) -> bool:
        # G uses the cell stack only (cells and reduction blocks): not the stem, last BN or classifier.
        return name.startswith("cells.") and name.endswith("weight")
