"""The DARTS space: flat choices, sampling, mutation, neighbourhoods and supernet masks."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from teg_plugin.config import TEGConfig
from teg_plugin.spaces import DartsSpace, get_space, space_names
from teg_plugin.spaces.darts import DARTS_V1, DARTS_V2, GENOTYPE_OPS, MASK_KEYS, DartsGenotype, GenotypeError


@pytest.fixture(scope="module")
def darts() -> DartsSpace:
    return DartsSpace()


def _pairs(genotype: DartsGenotype) -> list[tuple[str, int, int, tuple[str, int]]]:
    """Every pair of the canonical form as (cell, node, side, pair)."""
    canonical = genotype.canonical()
    return [
        (cell, n, side, pair)
        for cell in ("normal", "reduce")
        for n, node in enumerate(canonical.cell(cell))
        for side, pair in enumerate(node)
    ]


def _one_move_apart(a: DartsGenotype, b: DartsGenotype) -> bool:
    """Whether ``b`` is ``a`` with one op or one input of one node switched (up to pair order)."""
    a, b = a.canonical(), b.canonical()
    diffs = [
        (cell, n)
        for cell in ("normal", "reduce")
        for n, (x, y) in enumerate(zip(a.cell(cell), b.cell(cell), strict=True))
        if x != y
    ]
    if len(diffs) != 1:
        return False
    cell, n = diffs[0]
    old, new = set(a.cell(cell)[n]), set(b.cell(cell)[n])
    if len(old - new) != 1:
        return False
    (op_a, in_a), (op_b, in_b) = (old - new).pop(), (new - old).pop()
    return (op_a == op_b) != (in_a == in_b)


def test_registered_and_exported(darts: DartsSpace) -> None:
    assert "darts" in space_names()
    assert isinstance(get_space("darts"), DartsSpace)
    assert darts.name == "darts"
    assert DartsSpace.protocol_defaults == {"width": 1}
    assert TEGConfig.for_space(darts).width == 1
    assert darts.index(DARTS_V2) is None


def test_a_config_object_keeps_the_darts_width_unless_it_sets_one(darts: DartsSpace) -> None:
    from teg_plugin.scorer import TEGScorer

    scorer = TEGScorer(darts, data="synthetic", config=TEGConfig(repeat=1), device="cpu")
    assert scorer.config.width == 1 and scorer.config == TEGConfig.for_space(darts, repeat=1)
    assert TEGScorer(darts, data="synthetic", config=TEGConfig(width=2), device="cpu").config.width == 2
    assert TEGScorer("nas-bench-201", data="synthetic", config=TEGConfig(repeat=1), device="cpu").config.width == 3


def test_choices(darts: DartsSpace) -> None:
    choices = darts.choices()
    assert list(choices)[:8] == [
        "normal/node2/op0", "normal/node2/op1",
        "normal/node3/inputs", "normal/node3/op0", "normal/node3/op1",
        "normal/node4/inputs", "normal/node4/op0", "normal/node4/op1",
    ]  # fmt: skip
    assert len(choices) == 2 * (2 + 3 * 3)
    assert "normal/node2/inputs" not in choices and "reduce/node2/inputs" not in choices
    assert choices["reduce/node3/inputs"] == ("0+1", "0+2", "1+2")
    assert choices["normal/node4/inputs"] == ("0+1", "0+2", "0+3", "1+2", "1+3", "2+3")
    assert len(choices["normal/node5/inputs"]) == 10
    assert all(options == GENOTYPE_OPS for name, options in choices.items() if "/op" in name)
    choices["normal/node2/op0"] = ()
    assert darts.choices()["normal/node2/op0"] == GENOTYPE_OPS  # a fresh dict every call


def test_to_params_of_darts_v2(darts: DartsSpace) -> None:
    params = darts.to_params(DARTS_V2)
    assert params["normal/node2/op0"] == params["normal/node2/op1"] == "sep_conv_3x3"
    assert params["normal/node4/inputs"] == "0+1"
    assert (params["normal/node4/op0"], params["normal/node4/op1"]) == ("skip_connect", "sep_conv_3x3")
    assert params["normal/node5/inputs"] == "0+2"
    assert (params["normal/node5/op0"], params["normal/node5/op1"]) == ("skip_connect", "dil_conv_3x3")
    assert darts.from_params(params) == DARTS_V2.canonical()


def test_params_round_trip(darts: DartsSpace) -> None:
    rng = random.Random(1)
    for _ in range(200):
        genotype = darts.sample(rng)
        params = darts.to_params(genotype)
        assert set(params) == set(darts.choices())
        assert darts.from_params(params) == genotype == darts.canonical(genotype)
        assert darts.parse(darts.format(genotype)) == genotype


def test_to_params_ignores_pair_order(darts: DartsSpace) -> None:
    swapped = DartsGenotype(tuple(node[::-1] for node in DARTS_V1.normal), DARTS_V1.reduce)  # type: ignore[arg-type]
    assert darts.to_params(swapped) == darts.to_params(DARTS_V1)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda p: p.pop("reduce/node4/op1"), ["missing key(s) reduce/node4/op1"]),
        (lambda p: p.update({"normal/node2/inputs": "0+1"}), ["unexpected key(s) normal/node2/inputs"]),
        (lambda p: p.update({"normal/node3/op0": "conv_3x3"}), ["normal/node3/op0='conv_3x3'", "sep_conv_3x3"]),
        (lambda p: p.update({"normal/node3/op0": "none"}), ["normal/node3/op0='none'"]),
        (lambda p: p.update({"reduce/node3/inputs": "0+3"}), ["reduce/node3/inputs='0+3'", "0+1, 0+2, 1+2"]),
        (lambda p: p.update({"reduce/node5/inputs": "1+1"}), ["reduce/node5/inputs='1+1'"]),
    ],
)
def test_from_params_errors(darts: DartsSpace, change, fragments: list[str]) -> None:
    params = darts.to_params(DARTS_V2)
    change(params)
    with pytest.raises(ValueError) as info:
        darts.from_params(params)
    assert isinstance(info.value, GenotypeError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_sample_reproducible_and_covering(darts: DartsSpace) -> None:
    assert [darts.sample(random.Random(7)) for _ in range(3)] == [darts.sample(random.Random(7))] * 3
    rng_a, rng_b = random.Random(3), random.Random(3)
    assert [darts.sample(rng_a) for _ in range(20)] == [darts.sample(rng_b) for _ in range(20)]
    rng = random.Random(0)
    ops: Counter[str] = Counter()
    inputs: Counter[str] = Counter()
    for _ in range(300):
        params = darts.to_params(darts.sample(rng))
        ops.update(params[name] for name in params if "/op" in name)
        inputs[params["normal/node5/inputs"]] += 1
    assert set(ops) == set(GENOTYPE_OPS) and min(ops.values()) > 500  # ~686 expected each
    assert len(inputs) == 10


def test_mutate_reproducible(darts: DartsSpace) -> None:
    def walk(seed: int) -> list[DartsGenotype]:
        rng, arch, out = random.Random(seed), DARTS_V2, []
        for _ in range(30):
            arch = darts.mutate(arch, rng)
            out.append(arch)
        return out

    assert walk(5) == walk(5)
    assert walk(5) != walk(6)


def test_mutate_is_one_move_and_in_neighbours(darts: DartsSpace) -> None:
    rng = random.Random(11)
    kinds: Counter[str] = Counter()
    for parent in (DARTS_V1, DARTS_V2, darts.sample(random.Random(2))):
        neighbours = set(darts.neighbours(parent))
        for _ in range(150):
            child = darts.mutate(parent, rng)
            assert child == darts.canonical(child) != darts.canonical(parent)
            assert _one_move_apart(parent, child)
            assert child in neighbours
            same_inputs = {(c, n, s, i) for c, n, s, (_, i) in _pairs(parent)} == {
                (c, n, s, i) for c, n, s, (_, i) in _pairs(child)
            }
            kinds["op" if same_inputs else "input"] += 1
    assert kinds["op"] > 150 and kinds["input"] > 150  # about half each


def test_neighbours(darts: DartsSpace) -> None:
    for genotype in (DARTS_V1, DARTS_V2, darts.sample(random.Random(4))):
        neighbours = darts.neighbours(genotype)
        assert len(neighbours) == len(set(neighbours)) == 16 * 6 + 2 * (2 + 4 + 6)
        assert darts.canonical(genotype) not in neighbours
        assert all(n == darts.canonical(n) and _one_move_apart(genotype, n) for n in neighbours)
        assert neighbours == darts.neighbours(genotype)  # fixed order
    swapped = DartsGenotype(tuple(node[::-1] for node in DARTS_V1.normal), DARTS_V1.reduce)  # type: ignore[arg-type]
    assert darts.neighbours(swapped) == darts.neighbours(DARTS_V1)


def test_mask_round_trip(darts: DartsSpace) -> None:
    rng = random.Random(9)
    for genotype in [DARTS_V1, DARTS_V2] + [darts.sample(rng) for _ in range(50)]:
        mask = darts.mask_of(genotype)
        assert tuple(mask) == MASK_KEYS
        assert sum(len(ops) for ops in mask.values()) == 16
        assert all(len(ops) <= 1 for ops in mask.values())
        assert darts.arch_from_mask(mask) == darts.canonical(genotype)
        # Missing keys count as empty edges.
        assert darts.arch_from_mask({k: v for k, v in mask.items() if v}) == darts.canonical(genotype)
    mask = darts.mask_of(DARTS_V2)
    assert mask["normal/5<-2"] == ("dil_conv_3x3",) and mask["normal/5<-1"] == ()
    assert mask["reduce/3<-2"] == ("skip_connect",)


def test_full_mask_and_groups(darts: DartsSpace) -> None:
    full = darts.full_mask()
    assert tuple(full) == MASK_KEYS and len(MASK_KEYS) == 28
    assert MASK_KEYS[:3] == ("normal/2<-0", "normal/2<-1", "normal/3<-0") and MASK_KEYS[-1] == "reduce/5<-4"
    assert all(ops == GENOTYPE_OPS for ops in full.values())
    groups = darts.mask_groups()
    assert len(groups) == 8
    assert groups[0] == (("normal/2<-0", "normal/2<-1"), 2)
    assert groups[7] == (tuple(f"reduce/5<-{i}" for i in range(5)), 2)
    assert all(k == 2 for _, k in groups)
    assert [key for keys, _ in groups for key in keys] == list(MASK_KEYS)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (lambda m: m.update({"normal/3<-2": ("max_pool_3x3",)}), ["normal node 3", "exactly 2", "got 3"]),
        (lambda m: m.update({"reduce/4<-0": (), "reduce/4<-2": ()}), ["reduce node 4", "got 0 (none)"]),
        (lambda m: m.update({"normal/2<-0": ("skip_connect", "sep_conv_3x3")}), ["normal node 2", "exactly one op"]),
        (lambda m: m.update({"normal/2<-0": ("none",)}), ["normal node 2", "'none'"]),
        (lambda m: m.update({"normal/6<-0": ("skip_connect",)}), ["unknown DARTS mask key(s) normal/6<-0"]),
        (lambda m: m.update({"normal/2<-0": ("conv_9x9",)}), ["unknown DARTS op(s) ['conv_9x9'] on normal/2<-0"]),
    ],
)
def test_arch_from_mask_errors(darts: DartsSpace, change, fragments: list[str]) -> None:
    mask = darts.mask_of(DARTS_V2)
    change(mask)
    with pytest.raises(ValueError) as info:
        darts.arch_from_mask(mask)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_generalization_parameters_are_the_cell_stack(darts: DartsSpace) -> None:
    assert darts.generalization_parameter("cells.0.edges.normal/2<-0.sep_conv_3x3.1.weight")
    assert darts.generalization_parameter("cells.1.preprocess1.1.weight")
    assert not darts.generalization_parameter("cells.1.preprocess1.2.bias")
    assert not darts.generalization_parameter("stem.0.weight")
    assert not darts.generalization_parameter("classifier.weight")
