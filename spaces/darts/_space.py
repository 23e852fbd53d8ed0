"""The DARTS cell space as a :class:`~teg_plugin.spaces.SearchSpace`."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import ClassVar

from torch import nn

from teg_plugin.spaces._base import Mask, SearchSpace
from teg_plugin.spaces.darts import _mask, _moves
from teg_plugin.spaces.darts._genotype import DartsGenotype
from teg_plugin.spaces.darts._network import DartsEvalNetwork, DartsNetwork, count_parameters


class DartsSpace(SearchSpace[DartsGenotype]):
    """The DARTS cell space (Liu et al., 2019): a normal and a reduction cell of four nodes, each
    node summing two of the seven :data:`~teg_plugin.spaces.darts.GENOTYPE_OPS` applied to two
    different earlier nodes.

    Architectures are :class:`DartsGenotype` values in DARTS's text form. Isomorphic genotypes (a
    node's two pairs swapped) share one canonical form, which is what the flat choices encode.
    Supernet masks and networks follow TE-NAS's DARTS protocol: the proxy network is C=1 (see
    :attr:`protocol_defaults`), N=1 (one normal and one reduction cell), and the supernet leaves out
    the ``none`` op.

    Example:
        >>> import random
        >>> space = DartsSpace()
        >>> g = space.sample(random.Random(0))
        >>> space.parse(space.format(g)) == g == space.from_params(space.to_params(g))
        True
        >>> space.arch_from_mask(space.mask_of(g)) == g
        True
        >>> len(space.choices()), len(space.full_mask()), len(space.neighbours(g))
        (22, 28, 120)
    """

    name: ClassVar[str] = "darts"
    #: TE-NAS measures the DARTS space on a proxy network of width C=1 (NB201's is C=3).
    protocol_defaults: ClassVar[dict[str, int]] = {"width": 1}

    def complexity(self, arch: DartsGenotype, num_classes: int = 10) -> int:
        """Parameters of DARTS's CIFAR evaluation network of ``arch`` (C=36, 20 cells, no auxiliary head)."""
        return count_parameters(arch, num_classes=num_classes)

    def parse(self, text: str) -> DartsGenotype:
        return DartsGenotype.parse(text)

    def format(self, arch: DartsGenotype) -> str:
        return arch.format()

    def canonical(self, arch: DartsGenotype) -> DartsGenotype:
        return arch.canonical()

    def sample(self, rng: random.Random) -> DartsGenotype:
        return _moves.sample(rng)

    def mutate(self, arch: DartsGenotype, rng: random.Random) -> DartsGenotype:
        return _moves.mutate(arch, rng)

    def neighbours(self, arch: DartsGenotype) -> list[DartsGenotype]:
        return _moves.neighbours(arch)

    def choices(self) -> dict[str, tuple[str, ...]]:
        return _moves.choices()

    def to_params(self, arch: DartsGenotype) -> dict[str, str]:
        return _moves.to_params(arch)

    def from_params(self, params: Mapping[str, str]) -> DartsGenotype:
        return _moves.from_params(params)

    def mask_of(self, arch: DartsGenotype) -> dict[str, tuple[str, ...]]:
        """``arch``'s two chosen edges per node with one op each; ``()`` on every other edge."""
        return _mask.genotype_mask(arch)

    def full_mask(self) -> dict[str, tuple[str, ...]]:
        """Every edge with the seven genotype ops; ``none`` is left out, as TE-NAS does before pruning."""
        return _mask.full_mask()

    def arch_from_mask(self, mask: Mask) -> DartsGenotype:
        """The canonical genotype of a mask with exactly 2 non-empty edges of one op each per node."""
        return _mask.genotype_from_mask(mask)

    def mask_groups(self) -> list[tuple[tuple[str, ...], int]]:
        """Per cell and node, ``(its incoming edges' keys, 2)``: a node keeps at most 2 edges."""
        return _mask.mask_groups()

    def build_proxy_network(
        self, mask: Mask, *, width: int, cells_per_stage: int, num_classes: int, in_channels: int = 3
    ) -> DartsNetwork:
        return DartsNetwork(
            mask, width=width, cells_per_stage=cells_per_stage, num_classes=num_classes, in_channels=in_channels
        )

    def build_thin_network(self, mask: Mask, *, width: int, num_classes: int) -> DartsNetwork:
        return DartsNetwork(
            mask, width=width, cells_per_stage=1, num_classes=num_classes, in_channels=width, stem=False
        )

    def arch_of_network(self, network: nn.Module) -> DartsGenotype | None:
        """The genotype of a :class:`DartsEvalNetwork` (canonical), else ``None``."""
        if not isinstance(network, DartsEvalNetwork):
            return None
        return network.genotype.canonical()

    def generalization_parameter(self, name: str) -> bool:
        # G uses the cell stack only: not the stem, the last BN or the classifier.
        return name.startswith("cells.") and name.endswith("weight")

    def index(self, arch: DartsGenotype) -> None:
        """``None``: no benchmark tabulates the DARTS space."""
        return None
