"""The NAS-Bench-201 search space."""

from teg_plugin.spaces.nb201._arch import EDGE_NAMES, EDGES, OPS, ArchStringError, NB201Arch
from teg_plugin.spaces.nb201._network import NB201Network, build_network, build_thin_network
from teg_plugin.spaces.nb201._space import NB201Space

__all__ = [
    "EDGES",
    "EDGE_NAMES",
    "OPS",
    "ArchStringError",
    "NB201Arch",
    "NB201Network",
    "NB201Space",
    "build_network",
    "build_thin_network",
]
