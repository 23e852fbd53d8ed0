"""The zero-cost proxies' names and directions, without torch.

The one table of which proxies teg-plugin computes, in NAS-Bench-Suite-Zero's order (then ``zen``),
and whether a higher value predicts a more accurate network. :data:`teg_plugin.proxies.PROXIES` is
built in this order and each :class:`~teg_plugin.proxies.Proxy` reads its direction here, while
:class:`~teg_plugin.scores.RankRule` reads it to accept proxy terms without importing the proxies
(which import torch), and where a proxy's value is stored (:func:`proxy_key`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

#: Proxy name -> whether a higher value is better (every proxy here: higher).
PROXY_HIGHER_IS_BETTER: Mapping[str, bool] = MappingProxyType(
    {
        "params": True,
        "flops": True,
        "synflow": True,
        "snip": True,
        "grasp": True,
        "fisher": True,
        "grad_norm": True,
        "jacov": True,
        "nwot": True,
        "epe_nas": True,
        "l2_norm": True,
        "zen": True,
    }
)


#: The key of a proxy's value beside the TEG indicators, in Optuna user attributes and NNI results:
#: ``proxy_<name>`` (e.g. ``proxy_synflow``).
PROXY_KEY_PREFIX = "proxy_"


def proxy_key(name: str) -> str:
    """``proxy_<name>``: where ``name``'s value is stored beside the TEG indicators."""
    return PROXY_KEY_PREFIX + name


def keyed_proxy_values(values: Mapping[str, float]) -> dict[str, float | None]:
    """``{"proxy_<name>": value}`` for proxy values, as stored beside the TEG indicators (JSON-ready:
    a flagged proxy's NaN, or any value that is not finite, becomes ``None``).

    Example:
        >>> keyed_proxy_values({"synflow": 90.5, "nwot": float("nan")})
        {'proxy_synflow': 90.5, 'proxy_nwot': None}
    """
    return {proxy_key(name): (float(v) if math.isfinite(v) else None) for name, v in values.items()}
