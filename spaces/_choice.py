"""A user's own space: named categorical choices and a function that builds a model from them."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from teg_plugin._checks import shown
from teg_plugin.spaces._base import Mask, SearchSpace, param_key_problem

if TYPE_CHECKING:
    from torch import nn

#: Option values a :class:`ChoiceSpace` accepts: what JSON, Optuna and NNI can all hold.
Option = str | int | float | bool | None

#: Builds the model of one architecture from its choices.
BuildModel = Callable[[dict[str, Any]], "nn.Module"]
#: Builds E's thin network of one architecture from its choices and the thin width.
BuildThin = Callable[[dict[str, Any], int], "nn.Module"]
#: Builds the supernet of a mask: choice -> the options kept (a tuple, in the space's order).
BuildSupernet = Callable[[dict[str, tuple[Any, ...]]], "nn.Module"]
#: Builds E's thin supernet of a mask at the thin width.
BuildThinSupernet = Callable[[dict[str, tuple[Any, ...]], int], "nn.Module"]


class ChoiceArch(Mapping[str, Any]):
    """One architecture of a :class:`ChoiceSpace`: an immutable, hashable mapping choice -> option,
    in the space's choice order."""

    __slots__ = ("_items",)

    def __init__(self, items: Sequence[tuple[str, Any]]) -> None:
        self._items = tuple(items)

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChoiceArch):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        return f"ChoiceArch({dict(self._items)!r})"


class ChoiceSpace(SearchSpace[ChoiceArch]):
    """Any space given as categorical choices plus a model builder, searchable by every strategy;
    supernet pruning too when a ``supernet`` builder is given.

    Architectures are :class:`ChoiceArch` mappings; their text form is a JSON object in choice order.
    T and G are measured on ``build(choices)`` as built (its width is the builder's: the protocol's
    ``width`` and ``cells_per_stage`` do not apply), re-initialised with the protocol's name-seeded
    Kaiming weights. E is measured on ``thin(choices, width)`` when given (inputs: the protocol's
    ``(width, 3, 3)`` crops), else on the built model over the T/G images, which saturates for wide
    networks (every image its own region): give a thin builder for a meaningful E.

    **Supernet pruning** (``make_strategy("prune", ...)``, ``TEGSampler(strategy="prune")``) needs
    ``supernet(options)``: the network in which every kept option of each choice is active (TE-NAS's
    supernet averages the outputs of a choice's kept candidates), ``options`` mapping each choice to
    the tuple of options kept, in the space's order. A mask with several options on some choice is
    built with it (and E measured on ``thin_supernet(options, width)`` when given, else on that
    network itself); a mask with one option per choice is an architecture, built with ``build``
    (and ``thin``). Name the supernet's modules so that an option's modules have the same names
    whatever else is kept: the protocol's initialisation is seeded by module name.

    Args:
        name: identifies the space *and its builder* in score-cache keys: change it when the
            builder changes.
        choices: choice name -> its options (str, int, float, bool or None), in a fixed order.
        build: ``choices dict -> nn.Module`` returning logits ``(batch, classes)``.
        thin: ``(choices dict, width) -> nn.Module``, the thin network for E; ``None``: see above.
        generalization_parameter: which weights (by parameter name) enter G's Jacobian; default all.
        canonical: maps an architecture to its isomorphism-class representative; default identity.
        supernet: ``{choice: kept options} -> nn.Module``, the supernet of a mask (see above);
            ``None``: the space has no supernet and cannot be pruned.
        thin_supernet: ``({choice: kept options}, width) -> nn.Module``, E's thin supernet.

    Example:
        >>> from torch import nn
        >>> def build(c):
        ...     return nn.Sequential(nn.Conv2d(3, c["width"], 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        ...                          nn.Flatten(), nn.Linear(c["width"], 10))
        >>> space = ChoiceSpace("tiny-cnn", {"width": [4, 8, 16]}, build)
        >>> arch = space.parse('{"width": 8}')
        >>> space.format(arch), space.to_params(arch)
        ('{"width": 8}', {'width': 8})
    """

    name: ClassVar[str] = "custom"
    has_supernet: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        choices: Mapping[str, Sequence[Option]],
        build: BuildModel,
        *,
        thin: BuildThin | None = None,
        generalization_parameter: Callable[[str], bool] | None = None,
        canonical: Callable[[ChoiceArch], ChoiceArch] | None = None,
        supernet: BuildSupernet | None = None,
        thin_supernet: BuildThinSupernet | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a ChoiceSpace needs a non-empty name (it keys the score cache)")
        if not callable(build):
            raise TypeError("build must be callable: choices dict -> nn.Module")
        if thin is not None and not callable(thin):
            raise TypeError("thin must be callable: (choices dict, width) -> nn.Module, or None")
        if supernet is not None and not callable(supernet):
            raise TypeError("supernet must be callable: {choice: kept options} -> nn.Module, or None")
        if thin_supernet is not None and not callable(thin_supernet):
            raise TypeError("thin_supernet must be callable: ({choice: kept options}, width) -> nn.Module, or None")
        if thin_supernet is not None and supernet is None:
            raise ValueError("thin_supernet needs supernet: E's thin supernet goes with a supernet builder")
        self.name = name  # type: ignore[misc]  # an instance's own name, for cache keys
        if not isinstance(choices, Mapping):
            raise TypeError(
                f"choices must be a dict of choice name -> options, got {type(choices).__name__} {choices!r}"
            )
        for key, options in choices.items():
            if not isinstance(key, str):
                # Names become parameter names and JSON keys (strings): 1 and "1" would collide.
                raise TypeError(f"choice names must be strings, got {key!r} ({type(key).__name__})")
            # Options need an order of their own: a set's order changes with the hash seed, and a
            # string would be split into characters.
            if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
                raise TypeError(
                    f"the options of choice {key!r} must be a list or tuple (ordered), got {type(options).__name__} "
                    f"{options!r}"
                )
        self._choices = {key: tuple(options) for key, options in choices.items()}
        if not self._choices:
            raise ValueError("a ChoiceSpace needs at least one choice")
        for key, options in self._choices.items():
            _check_options(key, options)
        self._build = build
        self._thin = thin
        self._supernet = supernet
        self._thin_supernet = thin_supernet
        #: Whether masks with several options per choice can be built (a ``supernet`` was given).
        self.has_supernet = supernet is not None  # type: ignore[misc]  # per instance, not per class
        self._g_filter = generalization_parameter
        self._canonical = canonical

    def parse(self, text: str) -> ChoiceArch:
        try:
            params = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not a JSON object of {self.name} choices: {shown(text)} ({err.msg})") from None
        if not isinstance(params, dict):
            raise ValueError(f"a {self.name} architecture is a JSON object of choices, got {shown(text)}")
        return self._from_text_params(params)

    def _from_text_params(self, params: dict[str, Any]) -> ChoiceArch:
        """The architecture of the JSON object :meth:`parse` read (what :meth:`format` wrote)."""
        return self.from_params(params)

    def format(self, arch: ChoiceArch) -> str:
        return json.dumps(dict(arch))

    def canonical(self, arch: ChoiceArch) -> ChoiceArch:
        return arch if self._canonical is None else self._canonical(arch)

    def sample(self, rng: random.Random) -> ChoiceArch:
        return ChoiceArch([(key, rng.choice(options)) for key, options in self._choices.items()])

    def mutate(self, arch: ChoiceArch, rng: random.Random) -> ChoiceArch:
        movable = [key for key, options in self._choices.items() if len(options) > 1]
        if not movable:
            return arch
        key = rng.choice(movable)
        current = _position(self._choices[key], arch[key])
        option = rng.choice([o for i, o in enumerate(self._choices[key]) if i != current])
        return self._with(arch, key, option)

    def neighbours(self, arch: ChoiceArch) -> list[ChoiceArch]:
        return [
            self._with(arch, key, option)
            for key, options in self._choices.items()
            for i, option in enumerate(options)
            if i != _position(options, arch[key])
        ]

    def choices(self) -> dict[str, tuple[Option, ...]]:
        return dict(self._choices)

    def to_params(self, arch: ChoiceArch) -> dict[str, Any]:
        return dict(arch)

    def from_params(self, params: Mapping[str, Any]) -> ChoiceArch:
        problem = param_key_problem(params, list(self._choices))
        if problem:
            raise ValueError(f"{self.name} choices are {list(self._choices)}; {problem}")
        items = []
        for key, options in self._choices.items():
            value = params[key]
            match = next((o for o in options if _same_option(o, value)), _NO_MATCH)
            if match is _NO_MATCH:
                raise ValueError(f"{value!r} is not an option of {self.name} choice {key!r}; options: {list(options)}")
            items.append((key, match))
        return ChoiceArch(items)

    def build_proxy_network(
        self, mask: Mask, *, width: int, cells_per_stage: int, num_classes: int, in_channels: int = 3
    ) -> nn.Module:
        if self._is_supernet_mask(mask):
            assert self._supernet is not None
            return self._supernet(self._kept(mask))
        return self._build(dict(self._arch_of(mask)))

    def build_thin_network(self, mask: Mask, *, width: int, num_classes: int) -> nn.Module | None:
        if self._is_supernet_mask(mask):
            return None if self._thin_supernet is None else self._thin_supernet(self._kept(mask), width)
        if self._thin is None:
            return None
        return self._thin(dict(self._arch_of(mask)), width)

    def _is_supernet_mask(self, mask: Mask) -> bool:
        self.check_buildable(mask)
        return any(len(options) != 1 for options in mask.values())

    def _kept(self, mask: Mask) -> dict[str, tuple[Any, ...]]:
        """``mask`` as {choice: kept options, in the space's order} (``ValueError`` on a stranger)."""
        problem = param_key_problem(mask, list(self._choices))
        if problem:
            raise ValueError(f"{self.name} choices are {list(self._choices)}; {problem}")
        kept = {}
        for key, options in self._choices.items():
            given = list(mask[key])
            strangers = [v for v in given if not any(_same_option(o, v) for o in options)]
            if strangers:
                raise ValueError(
                    f"{strangers[0]!r} is not an option of {self.name} choice {key!r}; options: {list(options)}"
                )
            kept[key] = tuple(o for o in options if any(_same_option(o, v) for v in given))
        return kept

    def generalization_parameter(self, name: str) -> bool:
        return super().generalization_parameter(name) if self._g_filter is None else bool(self._g_filter(name))

    def _arch_of(self, mask: Mask) -> ChoiceArch:
        self.check_buildable(mask)
        return self.arch_from_mask(mask)

    def _with(self, arch: ChoiceArch, key: str, option: Any) -> ChoiceArch:
        return ChoiceArch([(k, option if k == key else v) for k, v in arch.items()])


_NO_MATCH = object()


def _same_option(option: Any, value: Any) -> bool:
    # bool is an int subclass: True must not match the option 1, nor 1.0 the option True.
    return (
        type(option) is type(value)
        and option == value
        or (isinstance(option, float) and isinstance(value, int) and not isinstance(value, bool) and option == value)
    )


def _position(options: Sequence[Any], value: Any) -> int:
    return next(i for i, option in enumerate(options) if _same_option(option, value))


def _check_options(key: str, options: Sequence[Any]) -> None:
    if not options:
        raise ValueError(f"choice {key!r} has no options")
    for option in options:
        if option is not None and not isinstance(option, (str, int, float, bool)):
            raise ValueError(f"choice {key!r}: option {option!r} is not a str, int, float, bool or None")
        if isinstance(option, float) and not math.isfinite(option):
            raise ValueError(f"choice {key!r}: option {option!r} is not finite")
    distinct: list[Hashable] = []
    for option in options:
        if any(_same_option(o, option) for o in distinct):
            raise ValueError(f"choice {key!r} lists option {option!r} twice")
        distinct.append(option)
