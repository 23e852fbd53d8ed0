"""DARTS genotypes: text round trips, clear errors for malformed input, and the canonical form."""

from __future__ import annotations

import pytest

from teg_plugin.spaces.darts import DARTS_V1, DARTS_V2, GENOTYPE_OPS, OPS, DartsGenotype, GenotypeError, parse_genotype

# Written out as DARTS's genotypes.py prints them (the DARTS paper's cells).
V1_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)
V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

NORMAL = V2_TEXT[V2_TEXT.index("[") : V2_TEXT.index("]") + 1]
REDUCE = V2_TEXT[V2_TEXT.index("reduce=") + 7 : V2_TEXT.rindex(", reduce_concat")]


def _text(normal: str = NORMAL, reduce: str = REDUCE, concat: str = "[2, 3, 4, 5]") -> str:
    return f"Genotype(normal={normal}, normal_concat={concat}, reduce={reduce}, reduce_concat={concat})"


def test_op_lists() -> None:
    assert OPS == (
        "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
    )  # fmt: skip
    assert GENOTYPE_OPS == OPS[1:]


@pytest.mark.parametrize(("genotype", "text"), [(DARTS_V1, V1_TEXT), (DARTS_V2, V2_TEXT)], ids=["v1", "v2"])
def test_published_genotypes_round_trip_text_exactly(genotype: DartsGenotype, text: str) -> None:
    assert genotype.format() == str(genotype) == text
    assert DartsGenotype.parse(text) == genotype
    assert parse_genotype(genotype.format()).format() == text


def test_published_values() -> None:
    assert DARTS_V2.normal[3] == (("skip_connect", 0), ("dil_conv_3x3", 2))
    assert DARTS_V1.normal[0] == (("sep_conv_3x3", 1), ("sep_conv_3x3", 0))
    assert DARTS_V1.reduce[3] == (("skip_connect", 2), ("avg_pool_3x3", 0))
    assert len(DARTS_V1.normal_pairs()) == len(DARTS_V2.reduce_pairs()) == 8


@pytest.mark.parametrize(
    "text",
    [
        _text(concat="range(2, 6)"),
        _text(concat="range(2,6)"),
        _text(concat="(2, 3, 4, 5)"),
        V2_TEXT.replace("'", '"'),
        V2_TEXT.replace(", ", ",\n    ").replace("Genotype(", "  Genotype(\n    "),
        V2_TEXT[len("Genotype(") : -1],  # without the prefix: the bare keyword list
        f"Genotype(reduce_concat=range(2, 6), reduce={REDUCE}, normal={NORMAL}, normal_concat=[2, 3, 4, 5])",
        f"Genotype({NORMAL}, [2, 3, 4, 5], {REDUCE}, [2, 3, 4, 5])",
        f"genotypes.Genotype(normal={NORMAL}, reduce={REDUCE})",
        f"{{'normal': {NORMAL}, 'reduce': {REDUCE}, 'normal_concat': range(2, 6)}}",
        _text(normal=NORMAL.replace("(", "[").replace(")", "]")),
    ],
    ids=[
        "range",
        "range-tight",
        "tuple-concat",
        "double-quotes",
        "newlines",
        "no-prefix",
        "keyword-order",
        "positional",
        "module-prefix",
        "dict",
        "list-pairs",
    ],  # fmt: skip
)
def test_accepted_variants(text: str) -> None:
    genotype = DartsGenotype.parse(text)
    assert genotype == DARTS_V2
    assert genotype.format() == V2_TEXT


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            _text(normal=NORMAL.replace("dil_conv_3x3", "conv_7x7")),
            ["normal node 5", "unknown op 'conv_7x7'", "max_pool_3x3, avg_pool_3x3, skip_connect"],
        ),
        (_text(normal=NORMAL.replace("('dil_conv_3x3', 2)", "('none', 2)")), ["normal node 5", "'none'", "supernet"]),
        (
            _text(reduce=REDUCE.replace("('max_pool_3x3', 1)]", "('max_pool_3x3', 6)]")),
            ["reduce node 5", "input 6 out of range", "0..4"],
        ),
        (
            _text(
                normal=NORMAL.replace(
                    "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1)",
                    "('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1)",
                )
            ),
            ["normal node 3", "input 3 out of range", "0..2"],
        ),
        (_text(normal=NORMAL.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', -1)", 1)), ["normal node 2", "input -1"]),
        (
            _text(normal=NORMAL.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1)),
            ["normal node 2", "both pairs take input 0", "different"],
        ),
        (_text(normal=NORMAL.replace(", ('dil_conv_3x3', 2)", "")), ["normal", "expected 8", "got 7"]),
        (_text(reduce=REDUCE.replace("]", ", ('max_pool_3x3', 1)]")), ["reduce", "expected 8", "got 9"]),
        (_text(normal=NORMAL.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0, 1)", 1)), ["(op, input) pair"]),
        (_text(normal=NORMAL.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', '0')", 1)), ["must be an int", "'0'"]),
        (_text(normal=NORMAL.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', True)", 1)), ["must be an int"]),
        (_text(normal="'sep_conv_3x3'"), ["normal", "list of (op, input) pairs"]),
        (_text(normal="[op for op in x]"), ["normal must be a literal list"]),
        (_text(concat="[2, 3, 4]"), ["bad normal_concat", "[2, 3, 4, 5]"]),
        (_text(concat="range(2, 5)"), ["bad normal_concat", "range(2, 6)"]),
        (_text(concat="range(x)"), ["bad normal_concat"]),
        (V2_TEXT.replace("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[5, 4, 3, 2]"), ["bad reduce_concat"]),
        (V2_TEXT.replace("Genotype(", "Genotyp("), ["not a Genotype expression"]),
        ("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|", ["not a Genotype expression"]),
        ("", ["not a Genotype expression"]),
        ("Genotype(normal=[", ["not a Genotype expression"]),
        ("[('sep_conv_3x3', 0)]", ["not a Genotype expression"]),
        (f"Genotype(normal={NORMAL})", ["lacks reduce"]),
        ("Genotype()", ["lacks normal and reduce"]),
        (_text()[:-1] + ", extra=1)", ["unknown Genotype field(s) extra"]),
        (f"Genotype({NORMAL}, normal={NORMAL}, reduce={REDUCE})", ["field 'normal' given twice"]),
        (f"Genotype(*x, reduce={REDUCE})", ["unpacked"]),
        (f"Genotype(**x, reduce={REDUCE})", ["unpacked"]),
        ("Genotype(1, 2, 3, 4, 5)", ["at most 4 fields"]),
        ("{1: 2}", ["dict keys"]),
    ],  # fmt: skip
)
def test_malformed_text(text: str, fragments: list[str]) -> None:
    with pytest.raises(GenotypeError) as info:
        DartsGenotype.parse(text)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(GenotypeError, match="must be a str"):
        DartsGenotype.parse(None)  # type: ignore[arg-type]


def test_parse_never_evaluates() -> None:
    with pytest.raises(GenotypeError):
        DartsGenotype.parse("__import__('os').system('false')")
    with pytest.raises(GenotypeError):
        DartsGenotype.parse(_text(normal="__import__('os').listdir('.')"))


def test_constructor_validates_and_freezes() -> None:
    nodes = [[("skip_connect", 0), ("sep_conv_3x3", 1)] for _ in range(4)]
    genotype = DartsGenotype(nodes, DARTS_V2.reduce)  # type: ignore[arg-type]
    assert genotype.normal == tuple((("skip_connect", 0), ("sep_conv_3x3", 1)) for _ in range(4))
    assert hash(genotype) == hash(DartsGenotype(genotype.normal, DARTS_V2.reduce))
    with pytest.raises(AttributeError):
        genotype.normal = DARTS_V2.normal  # type: ignore[misc]
    with pytest.raises(GenotypeError, match="expected 4 nodes"):
        DartsGenotype(DARTS_V2.normal[:3], DARTS_V2.reduce)  # type: ignore[arg-type]
    with pytest.raises(GenotypeError, match="reduce node 2: expected 2 .op, input. pairs"):
        DartsGenotype(DARTS_V2.normal, (DARTS_V2.reduce[0][:1], *DARTS_V2.reduce[1:]))  # type: ignore[arg-type]
    with pytest.raises(GenotypeError, match="unknown cell"):
        DARTS_V2.cell("other")


def test_canonical_sorts_each_node_by_input() -> None:
    canonical = DARTS_V1.canonical()
    assert canonical.normal[0] == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1))
    assert canonical.normal[1] == DARTS_V1.normal[1]
    assert canonical.reduce[3] == (("avg_pool_3x3", 0), ("skip_connect", 2))
    assert canonical.canonical() == canonical
    for cell in (canonical.normal, canonical.reduce):
        for (_, i), (_, j) in cell:
            assert i < j


def test_canonical_is_invariant_under_pair_swaps() -> None:
    base = DARTS_V2
    for mask in range(256):  # every subset of the 8 nodes gets its pairs swapped
        cells = []
        for c, cell in enumerate((base.normal, base.reduce)):
            cells.append(tuple(node[::-1] if mask >> (4 * c + n) & 1 else node for n, node in enumerate(cell)))
        swapped = DartsGenotype(*cells)
        assert swapped.canonical() == base.canonical()
        assert (swapped == base) == (mask == 0)


def test_swapped_genotype_keeps_its_own_text() -> None:
    swapped = DartsGenotype(tuple(node[::-1] for node in DARTS_V2.normal), DARTS_V2.reduce)  # type: ignore[arg-type]
    assert DartsGenotype.parse(swapped.format()) == swapped
    assert swapped.format() != DARTS_V2.format()
