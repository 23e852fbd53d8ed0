"""NB201 arch string: parse / format round trip and clear errors for malformed input."""

from __future__ import annotations

import pytest

from teg_plugin.spaces.nb201._arch import EDGE_NAMES, EDGES, OPS, ArchStringError, NB201Arch
from teg_plugin.spaces.nb201._index import all_archs

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_edges_and_names() -> None:
    assert EDGES == ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    assert EDGE_NAMES == ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")


def test_round_trip_all_archs() -> None:
    archs = all_archs()
    strings = {arch.to_str() for arch in archs}
    assert len(strings) == len(archs) == 15625
    for arch in archs:
        assert NB201Arch.parse(arch.to_str()) == arch


def test_parse_known_string() -> None:
    arch = NB201Arch.parse(RESNET)
    assert arch.ops == ("nor_conv_3x3", "none", "nor_conv_3x3", "skip_connect", "none", "skip_connect")
    assert arch.op(2, 1) == "nor_conv_3x3"
    assert str(arch) == arch.to_str() == RESNET
    assert NB201Arch.parse(f"  {RESNET}\n") == arch


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("|none~0|+|none~0|none~1|", "expected 3 node groups"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "got 4"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 input edge(s), got 1"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "node 3 needs 3 input edge(s), got 4"),
        ("|none~0|+|none~0|none-1|+|none~0|none~1|none~2|", "bad edge token 'none-1'"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|~2|", "bad edge token '~2'"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must look like |op~0|"),
        ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "must come from node 0"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~1|", "must come from node 2"),
        ("|none~0|+|none~0|conv_5x5~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("", "expected 3 node groups"),
    ],
)
def test_malformed_strings(text: str, fragment: str) -> None:
    with pytest.raises(ArchStringError) as info:
        NB201Arch.parse(text)
    assert fragment in str(info.value)


def test_unknown_op_message_names_edge_and_choices() -> None:
    with pytest.raises(ArchStringError, match=r"edge 2<-1.*none, skip_connect"):
        NB201Arch.parse("|none~0|+|none~0|conv_5x5~1|+|none~0|none~1|none~2|")


@pytest.mark.parametrize("value", [None, 3, b"|none~0|", ["none"] * 6])
def test_non_str_input(value: object) -> None:
    with pytest.raises(ArchStringError, match="must be a str"):
        NB201Arch.parse(value)  # type: ignore[arg-type]


def test_arch_string_error_is_value_error() -> None:
    assert issubclass(ArchStringError, ValueError)


def test_constructor_validates_ops() -> None:
    with pytest.raises(ArchStringError, match="6 edges"):
        NB201Arch(("none",) * 5)
    with pytest.raises(ArchStringError, match="unknown op 'conv'"):
        NB201Arch(("none",) * 5 + ("conv",))
    assert NB201Arch(list(OPS) + ["none"]).ops == tuple(OPS) + ("none",)  # type: ignore[arg-type]
