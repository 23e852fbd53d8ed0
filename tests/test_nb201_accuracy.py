"""Offline NB201 CIFAR-10 accuracy lookup (reporting only)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from teg_plugin.benchmarks import nb201_accuracy
from teg_plugin.benchmarks._make_accuracy_resource import read_columns, write_npz
from teg_plugin.benchmarks.nb201_accuracy import NB201Accuracy
from teg_plugin.spaces.nb201._arch import ArchStringError
from teg_plugin.spaces.nb201._index import arch_at

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GROUND_TRUTH = SHARED_DATA / "nb201" / "nb201_ground_truth.csv"
RESOURCE = Path(nb201_accuracy.__file__).resolve().parents[1] / "_resources" / nb201_accuracy.RESOURCE_NAME


@pytest.fixture(scope="module")
def acc() -> NB201Accuracy:
    return NB201Accuracy.load()


def test_best_cell(acc: NB201Accuracy) -> None:
    assert acc.valid(6111) == pytest.approx(91.6067, abs=1e-3)
    assert acc.test(6111) == pytest.approx(94.3733, abs=1e-3)
    assert int(np.argmax(acc.valid_array)) == 6111
    assert int(np.argmax(acc.test_array)) == 6111


def test_resnet_cell(acc: NB201Accuracy) -> None:
    assert acc.valid(11472) == pytest.approx(90.86, abs=1e-2)
    assert acc.test(11472) == pytest.approx(93.91, abs=1e-2)


@pytest.mark.parametrize("index", [0, 9, 123, 6111, 11472, 15624])
def test_lookup_forms_agree(acc: NB201Accuracy, index: int) -> None:
    arch = arch_at(index)
    for getter in (acc.valid, acc.test):
        value = getter(index)
        assert isinstance(value, float)
        assert getter(arch) == getter(arch.to_str()) == getter(np.int64(index)) == value


def test_bad_lookups(acc: NB201Accuracy) -> None:
    with pytest.raises(IndexError):
        acc.valid(15625)
    with pytest.raises(IndexError):
        acc.test(-1)
    with pytest.raises(TypeError, match="an arch string or an integer index, got 1.5"):
        acc.valid(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got True"):
        acc.valid(True)
    with pytest.raises(ArchStringError):
        acc.test("|none~0|")


def test_arrays_read_only(acc: NB201Accuracy) -> None:
    assert acc.valid_array.dtype == np.float32 and acc.valid_array.shape == (15625,)
    with pytest.raises(ValueError):
        acc.valid_array[0] = 0.0


def test_resource_small() -> None:
    assert RESOURCE.is_file()
    assert RESOURCE.stat().st_size < 1_000_000


def test_load_goes_through_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    NB201Accuracy.load()  # a cached earlier load must not bypass the guard

    def forbidden() -> None:
        raise RuntimeError("accuracy lookup is forbidden here")

    monkeypatch.setattr(nb201_accuracy, "_load_arrays", forbidden)
    with pytest.raises(RuntimeError, match="forbidden"):
        NB201Accuracy.load()


def test_resource_matches_csv(tmp_path: Path, acc: NB201Accuracy) -> None:
    if not GROUND_TRUTH.is_file():
        pytest.skip(f"shared NB201 ground truth not found at {GROUND_TRUTH} (expected ../shared/data)")
    arrays = read_columns(GROUND_TRUTH)
    np.testing.assert_array_equal(arrays["cifar10_valid"], acc.valid_array)
    np.testing.assert_array_equal(arrays["cifar10_test"], acc.test_array)
    with open(GROUND_TRUTH, newline="") as handle:
        rows = list(csv.DictReader(handle))
    exact = np.array([float(row["cifar10_test"]) for row in rows])
    assert np.abs(acc.test_array - exact).max() < 1e-4
    # Rebuilding is deterministic (byte equality with the shipped file would also hold, but only
    # on the same zlib, so the content is compared instead).
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    write_npz(arrays, first)
    write_npz(arrays, second)
    assert first.read_bytes() == second.read_bytes()
    with np.load(first, allow_pickle=False) as rebuilt, np.load(RESOURCE, allow_pickle=False) as shipped:
        assert sorted(rebuilt.files) == sorted(shipped.files) == ["cifar10_test", "cifar10_valid"]
        for name in shipped.files:
            np.testing.assert_array_equal(rebuilt[name], shipped[name])
