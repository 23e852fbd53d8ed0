"""The official NAS-Bench-201 index order, reproduced without any benchmark file.

NB201 numbers its 15,625 cells by enumerating every op assignment as a Cartesian product over the six
edges (arch-string order, first edge varying slowest, ops in :data:`OPS` order) and then shuffling the
list with ``random.seed(88); random.shuffle(lst)``. A private ``random.Random(88)`` gives the identical
shuffle (the module-level functions are methods of one such instance), so the global random state is
never touched.
"""

from __future__ import annotations

import itertools
import random
from functools import lru_cache

from teg_plugin._checks import check_int
from teg_plugin.spaces.nb201._arch import EDGES, OPS, NB201Arch

#: Number of cells in NAS-Bench-201 (5 ops on 6 edges).
NUM_ARCHS: int = len(OPS) ** len(EDGES)

_SHUFFLE_SEED = 88


@lru_cache(maxsize=1)
def all_archs() -> tuple[NB201Arch, ...]:
    """Every NB201 cell, position ``i`` holding the cell with NB201 index ``i`` (cached)."""
    assignments = list(itertools.product(OPS, repeat=len(EDGES)))
    random.Random(_SHUFFLE_SEED).shuffle(assignments)
    return tuple(NB201Arch(ops) for ops in assignments)


@lru_cache(maxsize=1)
def _index_map() -> dict[NB201Arch, int]:
    return {arch: i for i, arch in enumerate(all_archs())}


def checked_index(index: object) -> int:
    """``index`` as an ``int`` in ``0 .. NUM_ARCHS - 1``.

    Any integer type is accepted (``int``, ``numpy.int64``, ...; anything with ``__index__``).

    Raises:
        TypeError: ``index`` is not an integer (``bool``, ``float`` and ``str`` are refused).
        IndexError: ``index`` is outside ``0 .. NUM_ARCHS - 1`` (negative indices are not wrapped).
    """
    number = check_int("an NB201 index", index)
    if not 0 <= number < NUM_ARCHS:
        raise IndexError(f"NB201 index {number} out of range 0..{NUM_ARCHS - 1}")
    return number


def arch_at(index: int) -> NB201Arch:
    """The cell with NB201 index ``index``; ``index`` is checked by :func:`checked_index`.

    Raises:
        TypeError: ``index`` is not an integer.
        IndexError: ``index`` is outside ``0 .. NUM_ARCHS - 1``.
    """
    return all_archs()[checked_index(index)]


def index_of(arch: NB201Arch) -> int:
    """The NB201 index of ``arch`` (inverse of :func:`arch_at`).

    Raises:
        TypeError: ``arch`` is not an :class:`NB201Arch`.
    """
    if not isinstance(arch, NB201Arch):
        raise TypeError(f"expected an NB201Arch, got {type(arch).__name__}")
    return _index_map()[arch]
