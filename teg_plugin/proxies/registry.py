"""The proxies by name, and parsing a user's list of names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from teg_plugin._proxy_table import PROXY_HIGHER_IS_BETTER
from teg_plugin.proxies import (
    epe_nas,
    fisher,
    flops,
    grad_norm,
    grasp,
    jacov,
    l2_norm,
    nwot,
    params,
    snip,
    synflow,
    zen,
)
from teg_plugin.proxies._base import Proxy

_MODULES = (params, flops, synflow, snip, grasp, fisher, grad_norm, jacov, nwot, epe_nas, l2_norm, zen)
_BY_NAME = {module.PROXY.name: module.PROXY for module in _MODULES}
if set(_BY_NAME) != set(PROXY_HIGHER_IS_BETTER):  # a proxy module and the torch-free table disagree
    raise ImportError(
        f"the proxy modules ({', '.join(sorted(_BY_NAME))}) and teg_plugin._proxy_table "
        f"({', '.join(sorted(PROXY_HIGHER_IS_BETTER))}) must list the same proxies"
    )

#: Every proxy, by name, in NAS-Bench-Suite-Zero's order (then ``zen``): the order and the directions
#: of :data:`teg_plugin._proxy_table.PROXY_HIGHER_IS_BETTER`, which rank rules read without torch.
PROXIES: Mapping[str, Proxy] = MappingProxyType({name: _BY_NAME[name] for name in PROXY_HIGHER_IS_BETTER})


def proxy_names() -> tuple[str, ...]:
    """The names :func:`get_proxy` knows, in registry order."""
    return tuple(PROXIES)


def get_proxy(name: str) -> Proxy:
    """The proxy called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return PROXIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown proxy {name!r}; known: {', '.join(PROXIES)}") from None


def parse_proxy_names(names: str | Iterable[str]) -> tuple[str, ...]:
    """Proxy names from ``"synflow,nwot"`` or a list of names (``"all"``: every proxy), checked, in
    the order given, without repeats.

    Raises:
        ValueError: an unknown or empty name, or no name at all.

    Example:
        >>> parse_proxy_names("synflow, nwot,synflow")
        ('synflow', 'nwot')
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    cleaned = [str(item).strip() for item in items]
    if cleaned == ["all"]:
        return proxy_names()
    if not cleaned or any(not item for item in cleaned):
        raise ValueError(f"expected comma-separated proxy names ({', '.join(PROXIES)}, or all), got {names!r}")
    for item in cleaned:
        get_proxy(item)
    return tuple(dict.fromkeys(cleaned))
