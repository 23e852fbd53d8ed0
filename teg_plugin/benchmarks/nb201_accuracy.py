"""Offline NAS-Bench-201 CIFAR-10 accuracies, for REPORTING and evaluation only.

**Search code (scorers, strategies, samplers, pruners) must never import this module.** TEG-NAS is
training-free: a search that peeks at benchmark accuracies is no longer a training-free search, and
its results would be meaningless. Only benchmark scripts, reports and tests may use it.

The data is ``teg_plugin/_resources/nb201_cifar10_accuracy.npz`` (float32, NB201 index order; see
``teg_plugin/_resources/PROVENANCE.md``):

* ``cifar10_valid``: accuracy (%) on the held-out valid split of NB201's ``cifar10-valid`` setting,
  200 epochs, mean over seeds;
* ``cifar10_test``: CIFAR-10 test accuracy (%), trained on the full train set, 200 epochs, mean over
  seeds (NATS-Bench topology benchmark).

Every read of the file goes through :func:`_load_arrays`, so a test can monkeypatch that one function
to raise and prove that a search never loads accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TypeAlias

import numpy as np

from teg_plugin.spaces.nb201._arch import NB201Arch
from teg_plugin.spaces.nb201._index import NUM_ARCHS, checked_index, index_of

RESOURCE_NAME = "nb201_cifar10_accuracy.npz"

#: What a lookup accepts: a cell, its arch string, or its NB201 index.
ArchOrIndex: TypeAlias = NB201Arch | str | int


@dataclass(frozen=True)
class _Arrays:
    valid: np.ndarray
    test: np.ndarray


@lru_cache(maxsize=1)
def _load_arrays() -> _Arrays:
    """Read the resource once (the single entry point to the accuracy data)."""
    with resources.files("teg_plugin").joinpath("_resources", RESOURCE_NAME).open("rb") as handle:
        with np.load(handle, allow_pickle=False) as npz:
            valid, test = np.array(npz["cifar10_valid"]), np.array(npz["cifar10_test"])
    for name, array in (("cifar10_valid", valid), ("cifar10_test", test)):
        if array.shape != (NUM_ARCHS,):
            raise ValueError(f"{RESOURCE_NAME}: {name} has shape {array.shape}, expected ({NUM_ARCHS},)")
        array.setflags(write=False)
    return _Arrays(valid=valid, test=test)


class NB201Accuracy:
    """CIFAR-10 accuracies (%) of every NB201 cell. Build it with :meth:`load`.

    Example:
        >>> acc = NB201Accuracy.load()
        >>> round(acc.test(6111), 2)
        94.37
    """

    def __init__(self, arrays: _Arrays) -> None:
        self._arrays = arrays

    @classmethod
    def load(cls) -> NB201Accuracy:
        """The accuracy table. The file is read once per process; every call goes through
        :func:`_load_arrays` (so a guard that patches it catches every load)."""
        return cls(_load_arrays())

    def valid(self, arch_or_index: ArchOrIndex) -> float:
        """``cifar10_valid`` of a cell, an arch string or an NB201 index (use it for selection studies)."""
        return float(self._arrays.valid[_to_index(arch_or_index)])

    def test(self, arch_or_index: ArchOrIndex) -> float:
        """``cifar10_test`` of a cell, an arch string or an NB201 index (use it for reporting)."""
        return float(self._arrays.test[_to_index(arch_or_index)])

    @property
    def valid_array(self) -> np.ndarray:
        """All ``cifar10_valid`` values in index order (read-only float32)."""
        return self._arrays.valid

    @property
    def test_array(self) -> np.ndarray:
        """All ``cifar10_test`` values in index order (read-only float32)."""
        return self._arrays.test


def _to_index(arch_or_index: ArchOrIndex) -> int:
    """NB201 index of a cell, an arch string (parsed strictly) or an integer index (range-checked)."""
    if isinstance(arch_or_index, NB201Arch):
        return index_of(arch_or_index)
    if isinstance(arch_or_index, str):
        return index_of(NB201Arch.parse(arch_or_index))
    try:
        return checked_index(arch_or_index)
    except TypeError:
        raise TypeError(f"expected an NB201Arch, an arch string or an integer index, got {arch_or_index!r}") from None
