"""NB201 index order and isomorphism classes, checked against the shared ground-truth CSV."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from teg_plugin.spaces.nb201._arch import NB201Arch
from teg_plugin.spaces.nb201._index import NUM_ARCHS, all_archs, arch_at, index_of
from teg_plugin.spaces.nb201._isomorphism import canonical_arch, canonical_key

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GROUND_TRUTH = SHARED_DATA / "nb201" / "nb201_ground_truth.csv"

KNOWN = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    9: "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    123: "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    6111: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    11472: "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
}


@pytest.fixture(scope="module")
def ground_truth() -> list[dict[str, str]]:
    if not GROUND_TRUTH.is_file():
        pytest.skip(f"shared NB201 ground truth not found at {GROUND_TRUTH} (expected ../shared/data)")
    with open(GROUND_TRUTH, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(("index", "text"), sorted(KNOWN.items()))
def test_known_indices(index: int, text: str) -> None:
    assert arch_at(index).to_str() == text
    assert index_of(NB201Arch.parse(text)) == index


def test_order_is_a_permutation_and_invertible() -> None:
    archs = all_archs()
    assert NUM_ARCHS == 15625 == len(archs) == len(set(archs))
    assert all_archs() is archs
    assert all(index_of(arch) == i for i, arch in enumerate(archs))


def test_global_random_state_untouched() -> None:
    all_archs.cache_clear()
    try:
        random.seed(1234)
        expected = random.random()
        random.seed(1234)
        all_archs()
        assert random.random() == expected
    finally:
        all_archs.cache_clear()


def test_order_equals_csv(ground_truth: list[dict[str, str]]) -> None:
    assert [int(row["index"]) for row in ground_truth] == list(range(NUM_ARCHS))
    assert [row["arch_str"] for row in ground_truth] == [arch.to_str() for arch in all_archs()]


@pytest.mark.parametrize("bad", [-1, NUM_ARCHS, 10**9])
def test_arch_at_out_of_range(bad: int) -> None:
    with pytest.raises(IndexError, match="out of range"):
        arch_at(bad)


@pytest.mark.parametrize("bad", [1.0, "3", None, True])
def test_arch_at_non_int(bad: object) -> None:
    with pytest.raises(TypeError, match="an NB201 index must be an int, got"):
        arch_at(bad)  # type: ignore[arg-type]


def test_arch_at_accepts_numpy_int() -> None:
    assert arch_at(np.int64(9)).to_str() == KNOWN[9]


def test_index_of_rejects_non_arch() -> None:
    with pytest.raises(TypeError):
        index_of(KNOWN[0])  # type: ignore[arg-type]


def test_canonical_key_equals_unique_str(ground_truth: list[dict[str, str]]) -> None:
    # Stronger than the required partition match: the keys are NATS-Bench's unique_str verbatim.
    keys = [canonical_key(arch) for arch in all_archs()]
    assert keys == [row["unique_str"] for row in ground_truth]


def test_partition_matches_csv(ground_truth: list[dict[str, str]]) -> None:
    ours: dict[str, set[int]] = defaultdict(set)
    theirs: dict[str, set[int]] = defaultdict(set)
    for index, arch in enumerate(all_archs()):
        ours[canonical_key(arch)].add(index)
    for row in ground_truth:
        theirs[row["unique_str"]].add(int(row["index"]))
    assert len(ours) == len(theirs) == 6466
    assert {frozenset(c) for c in ours.values()} == {frozenset(c) for c in theirs.values()}


def test_known_keys() -> None:
    assert canonical_key(arch_at(0)) == "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
    quirky = NB201Arch.parse("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert canonical_key(quirky) == "#+#+#+0"
    assert canonical_key(NB201Arch(("none",) * 6)) == "#+#+#"


def test_canonical_arch_properties() -> None:
    members: dict[str, list[int]] = defaultdict(list)
    for index, arch in enumerate(all_archs()):
        members[canonical_key(arch)].append(index)
    for arch in all_archs():
        rep = canonical_arch(arch)
        key = canonical_key(arch)
        assert canonical_key(rep) == key
        leanest = min(members[key], key=lambda i: (sum(op != "none" for op in arch_at(i).ops), i))
        assert index_of(rep) == leanest
        assert canonical_arch(rep) == rep
    reps = {canonical_arch(arch) for arch in all_archs()}
    assert len(reps) == 6466


def test_representative_drops_dead_edges() -> None:
    # Node 3 receives nothing: every edge is dead, so the representative is the all-none cell.
    dead = NB201Arch.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|none~1|none~2|")
    assert canonical_arch(dead) == NB201Arch(("none",) * 6)
    # Node 1 is cut off from node 3 (and node 2 only feeds node 3 through node 1's zero): its conv is dead.
    partly = NB201Arch.parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert canonical_arch(partly).ops == ("none", "none", "none", "skip_connect", "none", "none")


def test_isomorphic_pair() -> None:
    # Node 1 is an identity copy of the input, so a conv into node 3 from node 0 and the same conv
    # from node 1 compute the same function.
    a = NB201Arch.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    b = NB201Arch.parse("|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|")
    assert canonical_key(a) == canonical_key(b)
    assert canonical_arch(a) == canonical_arch(b)
    other_op = NB201Arch.parse("|skip_connect~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert canonical_key(a) != canonical_key(other_op)
