"""NAS-Bench-201 cell encoding: the five ops, the six edges, and the arch string.

An NB201 cell has four nodes. Node 0 is the cell input; node ``j`` (1..3) is the sum of one op
applied to every earlier node ``i < j``. The arch string lists the edges node by node::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

and :data:`EDGES` fixes that order as ``(to, from)`` pairs. An :class:`NB201Arch` holds the op of
each edge in that order and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from teg_plugin._checks import shown

#: The op names, in NAS-Bench-201's own order (the order of its index enumeration).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

#: Number of nodes in a cell, including the input node 0.
NUM_NODES = 4

#: The six edges as ``(to_node, from_node)``, in arch-string order.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NUM_NODES) for i in range(j))

#: Edge names as used in flat parameter dicts (``"2<-1"`` is the edge from node 1 into node 2).
EDGE_NAMES: tuple[str, ...] = tuple(f"{j}<-{i}" for j, i in EDGES)

_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(\d+)$")


class ArchStringError(ValueError):
    """An NB201 arch string (or flat choice dict) is malformed or names an unknown op."""


@dataclass(frozen=True, order=True)
class NB201Arch:
    """One NAS-Bench-201 cell: ``ops[k]`` is the op on edge :data:`EDGES` ``[k]``.

    Args:
        ops: six op names from :data:`OPS`, in arch-string edge order.

    Example:
        >>> arch = NB201Arch.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
        >>> arch.op(2, 1)
        'nor_conv_3x3'
        >>> str(arch) == arch.to_str()
        True
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        ops = tuple(self.ops)
        if len(ops) != len(EDGES):
            raise ArchStringError(f"an NB201 cell has {len(EDGES)} edges, got {len(ops)} ops: {shown(ops)}")
        for edge, op in zip(EDGE_NAMES, ops):
            if op not in OPS:
                raise ArchStringError(f"unknown op {shown(op)} on edge {edge}; expected one of {', '.join(OPS)}")
        object.__setattr__(self, "ops", ops)

    @classmethod
    def parse(cls, text: str) -> NB201Arch:
        """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``; raise :class:`ArchStringError` if malformed."""
        if not isinstance(text, str):
            raise ArchStringError(f"an arch string must be a str, got {type(text).__name__}")
        stripped = text.strip()
        nodes = stripped.split("+")
        if len(nodes) != NUM_NODES - 1:
            raise ArchStringError(
                f"malformed NB201 arch string {shown(text)}: expected {NUM_NODES - 1} node groups separated "
                f"by '+', got {len(nodes)}"
            )
        ops: list[str] = []
        for j, group in enumerate(nodes, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise ArchStringError(
                    f"malformed NB201 arch string {shown(text)}: node {j} group {shown(group)} must look like |op~0|...|"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != j:
                raise ArchStringError(
                    f"malformed NB201 arch string {shown(text)}: node {j} needs {j} input edge(s), got {len(tokens)}"
                )
            for i, token in enumerate(tokens):
                match = _TOKEN.match(token)
                if match is None:
                    raise ArchStringError(f"malformed NB201 arch string {shown(text)}: bad edge token {shown(token)}")
                op, source = match.group(1), int(match.group(2))
                if source != i:
                    raise ArchStringError(
                        f"malformed NB201 arch string {shown(text)}: edge {shown(token)} into node {j} must come from "
                        f"node {i}"
                    )
                if op not in OPS:
                    raise ArchStringError(
                        f"unknown op {shown(op)} in {shown(text)} (edge {j}<-{i}); expected one of {', '.join(OPS)}"
                    )
                ops.append(op)
        return cls(tuple(ops))

    def to_str(self) -> str:
        """The canonical NB201 arch string of this cell."""
        groups = []
        k = 0
        for j in range(1, NUM_NODES):
            groups.append("|" + "|".join(f"{self.ops[k + i]}~{i}" for i in range(j)) + "|")
            k += j
        return "+".join(groups)

    def op(self, to_node: int, from_node: int) -> str:
        """The op on the edge ``from_node -> to_node``."""
        return self.ops[EDGES.index((to_node, from_node))]

    def __str__(self) -> str:
        return self.to_str()
