"""The standard zero-cost proxies (NAS-Bench-Suite-Zero's set, and Zen-score), computed by the project.

Each proxy is a small module with its definition and reference: :mod:`.params`, :mod:`.flops`,
:mod:`.synflow`, :mod:`.snip`, :mod:`.grasp`, :mod:`.fisher`, :mod:`.grad_norm`, :mod:`.jacov`,
:mod:`.nwot`, :mod:`.epe_nas`, :mod:`.l2_norm`, :mod:`.zen`. :class:`ProxyScorer` computes them on a
:class:`~teg_plugin.scorer.TEGScorer`'s space, data, inputs, device and score cache (one cache entry
per architecture and proxy). See docs/proxies.md.
"""

from teg_plugin._proxy_table import PROXY_KEY_PREFIX, proxy_key
from teg_plugin.proxies._base import NonFiniteProxy, Proxy, ProxyInputs
from teg_plugin.proxies.measure import ProxyResult, measure_proxies
from teg_plugin.proxies.registry import PROXIES, get_proxy, parse_proxy_names, proxy_names
from teg_plugin.proxies.scorer import ProxyScorer

__all__ = [
    "PROXIES",
    "PROXY_KEY_PREFIX",
    "NonFiniteProxy",
    "Proxy",
    "ProxyInputs",
    "ProxyResult",
    "ProxyScorer",
    "get_proxy",
    "measure_proxies",
    "parse_proxy_names",
    "proxy_key",
    "proxy_names",
]
