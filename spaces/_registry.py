"""Search spaces by command-line name."""

from __future__ import annotations

from collections.abc import Callable

from teg_plugin.spaces._base import SearchSpace


def _nb201() -> SearchSpace:
    from teg_plugin.spaces.nb201 import NB201Space

    return NB201Space()


def _darts() -> SearchSpace:
    from teg_plugin.spaces.darts import DartsSpace

    return DartsSpace()


_SPACES: dict[str, Callable[[], SearchSpace]] = {"nas-bench-201": _nb201, "darts": _darts}
_ALIASES = {"nb201": "nas-bench-201", "nasbench201": "nas-bench-201"}


def space_names() -> tuple[str, ...]:
    """The names :func:`get_space` accepts."""
    return tuple(_SPACES)


def space_name(name: str) -> str:
    """The registered name of the space called ``name`` (case, ``_`` and aliases such as ``"nb201"``
    resolved); ``ValueError`` if unknown.

    Example:
        >>> space_name("NB201")
        'nas-bench-201'
    """
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _SPACES:
        raise ValueError(f"unknown search space {name!r}; choose from {', '.join(_SPACES)}")
    return key


def get_space(name: str) -> SearchSpace:
    """The search space called ``name`` (e.g. ``"nas-bench-201"``, see :func:`space_name`); ``ValueError`` if unknown."""
    return _SPACES[space_name(name)]()
