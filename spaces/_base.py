"""The contract every search space fulfils, so scorers and strategies stay space-agnostic."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from teg_plugin._checks import check_int

if TYPE_CHECKING:
    import optuna
    from torch import nn

ArchT = TypeVar("ArchT", bound=Hashable)

#: A (partly pruned) supernet: for each choice, the options still active. An architecture is the mask
#: with exactly one option per choice.
Mask = Mapping[str, Sequence[str]]


def param_key_problem(params: Mapping[str, object], names: Sequence[str]) -> str | None:
    """What is wrong with the keys of a flat choice dict that should have exactly ``names``
    (``"missing key(s) ...; unexpected key(s) ..."``), or ``None`` when nothing is."""
    missing = [str(name) for name in names if name not in params]
    unexpected = sorted(str(key) for key in params if key not in names)
    problems = []
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected key(s) {', '.join(unexpected)}")
    return "; ".join(problems) or None


class SearchSpace(ABC, Generic[ArchT]):
    """A discrete space of architectures.

    Architectures are immutable, hashable values. Every architecture can be written as a flat dict
    of categorical choices (:meth:`choices` lists them), which is what Optuna and NNI see.
    """

    #: Short name used on the command line and in cache keys (e.g. ``"nas-bench-201"``).
    name: ClassVar[str]

    #: Scoring-protocol settings (:class:`~teg_plugin.config.TEGConfig` fields) that differ from
    #: the NB201 defaults for this space, e.g. ``{"width": 1}`` for the DARTS proxy network.
    protocol_defaults: ClassVar[Mapping[str, int]] = {}

    #: Whether :meth:`build_proxy_network` builds masks with several options per choice (a supernet),
    #: which supernet pruning needs. Spaces of single architectures only set it to ``False``.
    has_supernet: ClassVar[bool] = True

    #: :meth:`build_proxy_network` settings of the network an architecture is trained as, which
    #: :meth:`complexity` counts (NB201: ``{"width": 16, "cells_per_stage": 5}``); unset ones take
    #: the scoring protocol's values (:attr:`protocol_defaults`, then the NB201 protocol's).
    evaluation_network: ClassVar[Mapping[str, int]] = {}

    def complexity(self, arch: ArchT, num_classes: int = 10) -> int:
        """The parameter count of the network ``arch`` is trained as (:attr:`evaluation_network`),
        for a rank rule's complexity term (:class:`~teg_plugin.scores.RankRule`). Zero-cost: the
        network is built, never run.

        Example:
            >>> from teg_plugin.spaces import NB201Space
            >>> space = NB201Space()
            >>> space.complexity(space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
            1531546
        """
        settings = {"width": 3, "cells_per_stage": 1, **self.protocol_defaults, **self.evaluation_network}
        net = self.build_proxy_network(
            self.mask_of(arch),
            width=settings["width"],
            cells_per_stage=settings["cells_per_stage"],
            num_classes=num_classes,
        )
        return sum(p.numel() for p in net.parameters())

    def check_buildable(self, mask: Mask) -> None:
        """Raise ``ValueError`` if ``mask`` needs a supernet (several options on a choice) and the
        space has none (:attr:`has_supernet`); the message says which strategies can search it."""
        if not self.has_supernet and any(len(options) != 1 for options in mask.values()):
            raise ValueError(
                f"{self.name} has no supernet (it builds single architectures only), so its masks with "
                "several options per choice cannot be scored: supernet pruning needs NAS-Bench-201, DARTS or a "
                "ChoiceSpace given a supernet builder (supernet=...); search this space with 'evolution', 'random' "
                "or 'reinforce'"
            )

    @abstractmethod
    def parse(self, text: str) -> ArchT:
        """Parse the space's text form; raise ``ValueError`` with a clear message if malformed."""

    @abstractmethod
    def format(self, arch: ArchT) -> str:
        """The text form of ``arch`` (inverse of :meth:`parse`)."""

    @abstractmethod
    def canonical(self, arch: ArchT) -> ArchT:
        """The representative of ``arch``'s isomorphism class (the same for every member)."""

    @abstractmethod
    def sample(self, rng: random.Random) -> ArchT:
        """A uniformly random architecture drawn with ``rng``."""

    def sample_distinct(self, rng: random.Random, k: int) -> list[ArchT]:
        """``k`` different architectures, drawn one by one with :meth:`sample` (repeats are skipped),
        in the order drawn. Isomorphic architectures count as different.

        Raises:
            TypeError: ``k`` is not an integer.
            ValueError: ``k`` is below 1 or above the number of choice combinations.
        """
        combinations = math.prod(len(options) for options in self.choices().values())
        k = check_int("the number of architectures to sample", k)
        if not 1 <= k <= combinations:
            raise ValueError(
                f"the number of architectures to sample must be an int in [1, {combinations}] "
                f"for {self.name}; got {k!r}"
            )
        chosen: dict[ArchT, None] = {}
        while len(chosen) < k:
            chosen.setdefault(self.sample(rng), None)
        return list(chosen)

    @abstractmethod
    def mutate(self, arch: ArchT, rng: random.Random) -> ArchT:
        """A random neighbour of ``arch`` (one choice changed), drawn with ``rng``."""

    @abstractmethod
    def neighbours(self, arch: ArchT) -> Sequence[ArchT]:
        """Every architecture that differs from ``arch`` in exactly one choice, in a fixed order."""

    @abstractmethod
    def choices(self) -> Mapping[str, Sequence[Any]]:
        """Parameter name -> its options, in a fixed order.

        The options are op names (str) in NAS-Bench-201 and DARTS; a
        :class:`~teg_plugin.spaces.ChoiceSpace`'s may also be int, float, bool or None.
        """

    @abstractmethod
    def to_params(self, arch: ArchT) -> dict[str, str]:
        """``arch`` as a flat dict of categorical choices (keys from :meth:`choices`)."""

    @abstractmethod
    def from_params(self, params: Mapping[str, str]) -> ArchT:
        """Inverse of :meth:`to_params`; raise ``ValueError`` naming the bad or missing key."""

    @abstractmethod
    def build_proxy_network(
        self, mask: Mask, *, width: int, cells_per_stage: int, num_classes: int, in_channels: int = 3
    ) -> nn.Module:
        """The network of supernet ``mask`` whose NTK gives T and G (logits ``(batch, num_classes)``).

        Module names must be those of the full supernet, so that name-seeded initialisation gives an
        option the same weights whatever else is active.
        """

    @abstractmethod
    def build_thin_network(self, mask: Mask, *, width: int, num_classes: int) -> nn.Module | None:
        """The thin network of ``mask`` whose ReLU patterns give E (input ``(batch, width, H, W)``).

        ``None`` means the space has none: E is then counted on the proxy network itself, over the
        training and held-out images.
        """

    def mask_groups(self) -> Sequence[tuple[tuple[str, ...], int]]:
        """Groups of mask keys of which at most ``k`` may keep an option in an architecture, as
        ``(keys, k)`` (e.g. a DARTS node keeps 2 of its incoming edges). Supernet pruning removes
        whole keys of such a group after pruning options. Default: none."""
        return ()

    def mask_of(self, arch: ArchT) -> dict[str, tuple[str, ...]]:
        """``arch`` as a supernet mask with one active option per choice."""
        return {name: (option,) for name, option in self.to_params(arch).items()}

    def full_mask(self) -> dict[str, tuple[str, ...]]:
        """The whole supernet: every option of every choice active."""
        return {name: tuple(options) for name, options in self.choices().items()}

    def arch_from_mask(self, mask: Mask) -> ArchT:
        """The architecture of a mask with exactly one option per choice."""
        multi = {name: list(options) for name, options in mask.items() if len(options) != 1}
        if multi:
            raise ValueError(f"a mask names one architecture only with one option per choice; got {multi}")
        return self.from_params({name: options[0] for name, options in mask.items()})

    def arch_of_network(self, network: nn.Module) -> ArchT | None:
        """The architecture a network built by this space (or frozen from its NNI model space) was
        built from, or ``None`` when ``network`` does not say (default: never)."""
        return None

    def generalization_parameter(self, name: str) -> bool:
        """Whether proxy-network parameter ``name`` enters the G Jacobian (default: every weight)."""
        return name.endswith("weight")

    def index(self, arch: ArchT) -> int | None:
        """A benchmark index for ``arch``, where the space has one."""
        return None

    def suggest(self, trial: optuna.Trial) -> ArchT:
        """Suggest an architecture in an Optuna trial: ``trial.suggest_categorical(name, options)``
        once per choice of :meth:`choices`, then :meth:`from_params` of the values. Any object with
        Optuna's ``suggest_categorical`` will do, so nothing is imported here;
        :func:`teg_plugin.optuna.suggest` calls this method."""
        params = {name: trial.suggest_categorical(name, list(options)) for name, options in self.choices().items()}
        return self.from_params(params)
