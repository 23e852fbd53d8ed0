"""The NAS-Bench-201 search space."""

from teg_plugin.spaces.nb201._arch import EDGE_NAMES, EDGES, OPS, ArchStringError, NB201Arch

__all__ = ["EDGES", "EDGE_NAMES", "OPS", "ArchStringError", "NB201Arch"]
