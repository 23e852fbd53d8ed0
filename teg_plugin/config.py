"""The scoring protocol's settings: one typed object, whose defaults are the paper's NB201 protocol."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from teg_plugin._checks import check_int, check_real

if TYPE_CHECKING:
    from teg_plugin.spaces import SearchSpace


#: Settings whose protocol value depends on the search space, with the NB201 protocol's value (used
#: when a space does not set its own in ``protocol_defaults``).
SPACE_DEPENDENT: dict[str, int] = {"width": 3}

#: Initialisation schemes of :attr:`TEGConfig.init`; the first is the default.
INIT_SCHEMES: tuple[str, ...] = ("torch-default", "kaiming-normal")
#: The scheme of scores made before :attr:`TEGConfig.init` existed: left out of their fingerprints.
LEGACY_INIT = "kaiming-normal"

#: How the NTK Jacobians are taken (:attr:`TEGConfig.ntk`).
EXACT = "exact"
FROZEN_BN = "frozen-bn"
NTK_MODES: tuple[str, ...] = (EXACT, FROZEN_BN)
#: The default of :attr:`TEGConfig.ntk`.
DEFAULT_NTK = EXACT


@dataclass(frozen=True)
class TEGConfig:
    """How the three TEG indicators are measured.

    The defaults reproduce TEG-NAS on NAS-Bench-201. Every field enters :meth:`fingerprint`, so
    cached scores are only reused under identical settings.

    Args:
        width: channels ``C`` of the proxy network used for T and G. ``None`` (the default): the
            space's protocol value (:attr:`~teg_plugin.spaces.SearchSpace.protocol_defaults`;
            NB201: 3, DARTS: 1), filled in by :meth:`resolved`, which every scorer calls.
        cells_per_stage: cells ``N`` per stage of that network.
        batch_size: images in the training batch (T and G) and in the held-out batch (G).
        repeat: random initialisations (and input draws) per architecture; indicators are averaged.
        seed: the root of every random draw (inputs and weights).
        regions_width: channels of the thin network used for E (and of its inputs).
        regions_batches: batches of crops fed to the thin network.
        regions_batch_size: crops per batch (BatchNorm statistics are per batch).
        regions_crop: side of the square crops fed to the thin network.
        singular_rtol: Θ(train, train) counts as singular (the architecture is flagged bad) when its
            smallest eigenvalue is at most this fraction of its largest. The default sits just above
            float32 round-off, the precision the Jacobians are computed in.
        init: how conv and linear layers are initialised (name-seeded either way, see
            :func:`~teg_plugin.indicators.init.init_network`): ``"torch-default"`` (the default:
            PyTorch's own layer initialisation, Kaiming uniform with ``a = sqrt(5)``, i.e. weights
            and biases uniform in ``±1/sqrt(fan_in)``), which the released code of TE-NAS and
            TEG-NAS ends up running (their launch scripts ask for ``kaiming_norm``, a name none of
            their initialisation branches matches), or ``"kaiming-normal"`` (the paper's text:
            Kaiming normal, fan-in, ReLU gain; zero biases). ``"kaiming-normal"`` was the default
            before 0.2; it is left out of :meth:`fingerprint`, so caches made with it stay valid under
            it and are never served for ``"torch-default"``.
        ntk: how the NTK Jacobians of T and G are taken: ``"exact"`` (BatchNorm in train mode on the
            whole batch, so every row is a reverse pass through the batch: the definition as the
            reference code runs it) or ``"frozen-bn"`` (BatchNorm's batch statistics taken in one
            train-mode pass, then held fixed, so each row is a per-sample gradient,
            :mod:`teg_plugin.indicators.frozen_bn`: the same forward values, about 1/batch of the
            work). ``"exact"`` is left out of the fingerprint, like ``init``'s old default.

    Raises:
        ValueError: a setting of the wrong type or out of range (the message names it and its range).

    Example:
        >>> TEGConfig(repeat=1).repeat
        1
    """

    width: int | None = None
    cells_per_stage: int = 1
    batch_size: int = 64
    repeat: int = 3
    seed: int = 0
    regions_width: int = 1
    regions_batches: int = 3
    regions_batch_size: int = 1000
    regions_crop: int = 3
    singular_rtol: float = 1e-7
    init: str = INIT_SCHEMES[0]
    ntk: str = DEFAULT_NTK

    def __post_init__(self) -> None:
        # Integers of any integer type (numpy's too) are stored as int, so fingerprints stay JSON.
        minimum = dict.fromkeys(("cells_per_stage", "repeat", "regions_width", "regions_batches", "regions_crop"), 1)
        minimum.update(batch_size=2, regions_batch_size=2)  # BatchNorm needs two samples
        checks = [*minimum.items(), ("seed", None)]
        if self.width is not None:  # None: the space's value, see resolved()
            checks.append(("width", 1))
        for name, low in checks:
            value = getattr(self, name)
            try:
                number = check_int(name, value, minimum=low)
            except (TypeError, ValueError):  # one error type for every bad setting
                need = (
                    "an int"
                    if low is None
                    else ("a positive int" if low == 1 else f"an int >= {low} (BatchNorm needs two samples)")
                )
                raise ValueError(f"TEGConfig.{name} must be {need}, got {value!r}") from None
            object.__setattr__(self, name, number)
        try:
            rtol = check_real("singular_rtol", self.singular_rtol, above=0.0, below=1.0)
        except (TypeError, ValueError):
            raise ValueError(
                f"TEGConfig.singular_rtol must be a number in (0, 1), got {self.singular_rtol!r}"
            ) from None
        object.__setattr__(self, "singular_rtol", rtol)
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"TEGConfig.init must be one of {', '.join(INIT_SCHEMES)}, got {self.init!r}")
        if self.ntk not in NTK_MODES:
            raise ValueError(f"TEGConfig.ntk must be one of {', '.join(NTK_MODES)}, got {self.ntk!r}")

    @classmethod
    def for_space(cls, space: SearchSpace, **settings: Any) -> TEGConfig:
        """The paper's protocol for ``space`` (its :attr:`~teg_plugin.spaces.SearchSpace.protocol_defaults`
        over the NB201 defaults), with ``settings`` on top.

        Example:
            >>> from teg_plugin.spaces import get_space
            >>> TEGConfig.for_space(get_space("nas-bench-201"), repeat=1).width
            3
            >>> TEGConfig.for_space(get_space("darts")).width
            1
        """
        return cls(**{**space.protocol_defaults, **settings}).resolved(space)

    def resolved(self, space: SearchSpace | None = None) -> TEGConfig:
        """This config with every space-dependent setting left ``None`` filled in: the value in
        ``space``'s :attr:`~teg_plugin.spaces.SearchSpace.protocol_defaults`, else the NB201
        protocol's (:data:`SPACE_DEPENDENT`). Settings given explicitly are kept.

        Example:
            >>> from teg_plugin.spaces import get_space
            >>> TEGConfig(repeat=1).resolved(get_space("darts")).width, TEGConfig(width=4).resolved(get_space("darts")).width
            (1, 4)
        """
        space_values = space.protocol_defaults if space is not None else {}
        # Any: replace() takes each setting by its own name and type, which a dict of names cannot say.
        unset: dict[str, Any] = {
            name: space_values.get(name, value)
            for name, value in SPACE_DEPENDENT.items()
            if getattr(self, name) is None
        }
        return replace(self, **unset) if unset else self

    def resolved_width(self, space: SearchSpace | None = None) -> int:
        """The proxy network's ``width`` under :meth:`resolved` for ``space`` (never ``None``).

        Example:
            >>> from teg_plugin.spaces import get_space
            >>> TEGConfig().resolved_width(), TEGConfig().resolved_width(get_space("darts"))
            (3, 1)
            >>> TEGConfig(width=4).resolved_width(get_space("darts"))
            4
        """
        width = self.resolved(space).width
        assert width is not None  # resolved() fills in every space-dependent setting
        return width

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TEGConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown TEGConfig fields: {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)

    def fingerprint(self) -> str:
        """A stable hex digest of every setting (part of the score-cache key).

        Settings added after the first release are left out at the values scores had before them
        (``init="kaiming-normal"``, ``ntk="exact"``), so those scores' fingerprints, and cache keys,
        stay valid, and are never confused with another setting's.
        """
        values = self.to_dict()
        if values["init"] == LEGACY_INIT:
            del values["init"]
        if values["ntk"] == EXACT:
            del values["ntk"]
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
