"""The zero-cost proxies' names and directions, without torch.

The one table of which proxies teg-plugin computes, in NAS-Bench-Suite-Zero's order (then ``zen``),
and whether a higher value predicts a more accurate network. :data:`teg_plugin.proxies.PROXIES` is
built in this order and each :class:`~teg_plugin.proxies.Proxy` reads its direction here, while
:class:`~teg_plugin.scores.RankRule` reads it to accept proxy terms without importing the proxies
(which import torch).
"""

from __future__ import annotations

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
