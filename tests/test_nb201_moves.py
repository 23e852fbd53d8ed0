"""NB201 sampling, mutation, neighbourhoods and the flat parameter dict."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from teg_plugin.spaces.nb201._arch import EDGE_NAMES, OPS, ArchStringError, NB201Arch
from teg_plugin.spaces.nb201._moves import choices, from_params, mutate, neighbours, sample, to_params

RESNET = NB201Arch.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")


def _differing_edges(a: NB201Arch, b: NB201Arch) -> list[int]:
    return [k for k, (x, y) in enumerate(zip(a.ops, b.ops, strict=True)) if x != y]


def test_sample_reproducible() -> None:
    first = [sample(random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [sample(rng_a) for _ in range(50)] == [sample(rng_b) for _ in range(50)]


def test_sample_draws_choice_per_edge_in_order() -> None:
    rng = random.Random(3)
    reference = random.Random(3)
    expected = NB201Arch(tuple(reference.choice(OPS) for _ in EDGE_NAMES))
    assert sample(rng) == expected


def test_sample_covers_all_ops_on_every_edge() -> None:
    rng = random.Random(0)
    counts = [Counter() for _ in EDGE_NAMES]
    for _ in range(2000):
        for k, op in enumerate(sample(rng).ops):
            counts[k][op] += 1
    for counter in counts:
        assert set(counter) == set(OPS)
        assert min(counter.values()) > 300  # ~400 expected each


def test_sample_leaves_global_random_alone() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    sample(random.Random(1))
    assert random.random() == expected


def test_mutate_changes_exactly_one_edge() -> None:
    rng = random.Random(11)
    edges_hit: Counter[int] = Counter()
    ops_hit: Counter[str] = Counter()
    arch = RESNET
    for _ in range(600):
        child = mutate(arch, rng)
        diff = _differing_edges(arch, child)
        assert len(diff) == 1
        edges_hit[diff[0]] += 1
        ops_hit[child.ops[diff[0]]] += 1
        arch = child
    assert set(edges_hit) == set(range(6))
    assert set(ops_hit) == set(OPS)


def test_mutate_reproducible() -> None:
    assert mutate(RESNET, random.Random(4)) == mutate(RESNET, random.Random(4))


def test_neighbours() -> None:
    result = neighbours(RESNET)
    assert len(result) == 24 == len(set(result))
    assert RESNET not in result
    for n in result:
        assert len(_differing_edges(RESNET, n)) == 1
    # fixed order: by edge, then by OPS order
    keys = [(d := _differing_edges(RESNET, n)[0], OPS.index(n.ops[d])) for n in result]
    assert keys == sorted(keys)
    assert neighbours(RESNET) == result


def test_mutate_draws_from_neighbours() -> None:
    rng = random.Random(2)
    allowed = set(neighbours(RESNET))
    assert {mutate(RESNET, rng) for _ in range(500)} == allowed


def test_choices() -> None:
    result = choices()
    assert list(result) == list(EDGE_NAMES)
    assert all(options == OPS for options in result.values())
    result.clear()
    assert len(choices()) == 6


def test_params_round_trip() -> None:
    params = to_params(RESNET)
    assert params == {
        "1<-0": "nor_conv_3x3",
        "2<-0": "none",
        "2<-1": "nor_conv_3x3",
        "3<-0": "skip_connect",
        "3<-1": "none",
        "3<-2": "skip_connect",
    }
    assert from_params(params) == RESNET
    rng = random.Random(9)
    for _ in range(200):
        arch = sample(rng)
        assert from_params(to_params(arch)) == arch


def test_from_params_missing_key() -> None:
    params = to_params(RESNET)
    del params["3<-1"]
    with pytest.raises(ArchStringError, match=r"missing key\(s\) 3<-1"):
        from_params(params)


def test_from_params_unexpected_key() -> None:
    params = {**to_params(RESNET), "4<-0": "none"}
    with pytest.raises(ArchStringError, match=r"unexpected key\(s\) 4<-0"):
        from_params(params)


def test_from_params_missing_and_unexpected() -> None:
    params = to_params(RESNET)
    params["1<-1"] = params.pop("1<-0")
    with pytest.raises(ArchStringError, match=r"missing key\(s\) 1<-0; unexpected key\(s\) 1<-1"):
        from_params(params)


def test_from_params_unknown_op() -> None:
    params = {**to_params(RESNET), "2<-1": "conv_5x5"}
    with pytest.raises(ArchStringError, match=r"2<-1='conv_5x5'"):
        from_params(params)


def test_sample_distinct_draws_k_different_archs_in_draw_order() -> None:
    from teg_plugin.spaces import NB201Space

    space = NB201Space()
    archs = space.sample_distinct(random.Random(3), 40)
    assert len(set(archs)) == 40
    assert archs == space.sample_distinct(random.Random(3), 40)
    rng = random.Random(3)
    first = space.sample(rng)  # the first draw is the first arch: repeats are skipped, not reordered
    assert archs[0] == first
    with pytest.raises(ValueError, match=r"must be an int in \[1, 15625\] for nas-bench-201; got 0"):
        space.sample_distinct(random.Random(0), 0)
    with pytest.raises(TypeError, match="the number of architectures to sample must be an int, got 2.0"):
        space.sample_distinct(random.Random(0), 2.0)  # type: ignore[arg-type]
