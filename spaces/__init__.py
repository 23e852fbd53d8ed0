"""Search spaces: what can be built (installed as ``teg_plugin.spaces``)."""

from teg_plugin.spaces._base import Mask, SearchSpace
from teg_plugin.spaces._choice import ChoiceArch, ChoiceSpace
from teg_plugin.spaces._flops import count_flops
from teg_plugin.spaces._registry import get_space, space_name, space_names
from teg_plugin.spaces.darts import DartsSpace
from teg_plugin.spaces.nb201 import NB201Space

__all__ = [
    "ChoiceArch",
    "ChoiceSpace",
    "DartsSpace",
    "Mask",
    "NB201Space",
    "SearchSpace",
    "count_flops",
    "get_space",
    "space_name",
    "space_names",
]
