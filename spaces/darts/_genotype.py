"""DARTS genotypes: the two cells of a DARTS architecture, and their standard text form.

A DARTS cell has two input nodes (0: the output of the cell before the previous one, 1: the output
of the previous cell) and four intermediate nodes ``k = 2..5``. Node ``k`` is the sum of two ops, each
applied to a different earlier node ``i < k``; the cell outputs the concatenation of nodes 2..5. A
genotype holds, for the normal and the reduction cell, each node's two ``(op, input)`` pairs, as DARTS
prints it::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[...], reduce_concat=[2, 3, 4, 5])

with the eight pairs listed node by node. Parsing uses :mod:`ast` and never evaluates the text.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from teg_plugin._checks import clip, shown

#: The supernet's candidate ops, in DARTS's ``PRIMITIVES`` order. ``none`` (the zero op) exists in the
#: supernet only: DARTS derives its genotypes excluding it.
OPS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

#: The ops a genotype may hold: :data:`OPS` without ``none``, in the same order.
GENOTYPE_OPS: tuple[str, ...] = OPS[1:]

#: The two cell types, in genotype order.
CELLS: tuple[str, ...] = ("normal", "reduce")

#: The intermediate nodes of a cell; node ``k`` takes its inputs among ``0 .. k-1``.
NODES: tuple[int, ...] = (2, 3, 4, 5)

#: The nodes every DARTS cell concatenates into its output.
CONCAT: tuple[int, ...] = NODES

#: One input of a node: the op and the node it is applied to.
Pair = tuple[str, int]
#: A node's two inputs.
Node = tuple[Pair, Pair]
#: A cell's four nodes, node 2 first.
Cell = tuple[Node, Node, Node, Node]

_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


class GenotypeError(ValueError):
    """A DARTS genotype (text, pairs or flat choices) is malformed; the message says what is wrong."""


@dataclass(frozen=True, order=True)
class DartsGenotype:
    """One DARTS architecture: the normal and the reduction cell.

    Args:
        normal: the normal cell's four nodes (2..5), each two ``(op, input)`` pairs; lists are
            accepted and stored as tuples. Ops come from :data:`GENOTYPE_OPS`; node ``k``'s inputs
            are two different nodes among ``0 .. k-1``. The pair order is kept as given (see
            :meth:`canonical`).
        reduce: the reduction cell, in the same form.

    Raises:
        GenotypeError: a node is malformed; the message names the cell, the node and the problem.

    Example:
        >>> g = DartsGenotype.parse(DARTS_V2.format())
        >>> g == DARTS_V2, g.normal[3]
        (True, (('skip_connect', 0), ('dil_conv_3x3', 2)))
        >>> DartsGenotype.from_pairs([("skip_connect", 1), ("sep_conv_3x3", 0)] * 4, DARTS_V2.reduce_pairs()).normal[0]
        (('skip_connect', 1), ('sep_conv_3x3', 0))
    """

    normal: Cell
    reduce: Cell

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduce", _check_cell("reduce", self.reduce))

    @classmethod
    def from_pairs(cls, normal: Sequence[Pair], reduce: Sequence[Pair]) -> DartsGenotype:
        """The genotype of two flat lists of eight ``(op, input)`` pairs, node by node (DARTS's form)."""
        return cls(_nodes_of("normal", normal), _nodes_of("reduce", reduce))

    @classmethod
    def parse(cls, text: str) -> DartsGenotype:
        """Parse DARTS's text form; see :func:`parse_genotype`."""
        return parse_genotype(text)

    def cell(self, name: str) -> Cell:
        """The cell called ``name`` (``"normal"`` or ``"reduce"``)."""
        if name not in CELLS:
            raise GenotypeError(f"unknown cell {shown(name)}; expected one of {', '.join(CELLS)}")
        return self.normal if name == "normal" else self.reduce

    def normal_pairs(self) -> list[Pair]:
        """The normal cell's eight pairs, node by node, as DARTS lists them."""
        return [pair for node in self.normal for pair in node]

    def reduce_pairs(self) -> list[Pair]:
        """The reduction cell's eight pairs, node by node, as DARTS lists them."""
        return [pair for node in self.reduce for pair in node]

    def canonical(self) -> DartsGenotype:
        """The genotype with each node's two pairs sorted by ``(input, op)``.

        A node sums its two inputs, so swapping them gives the same network: every genotype of such a
        class has this one canonical form.
        """
        return DartsGenotype(_sorted_cell(self.normal), _sorted_cell(self.reduce))

    def format(self) -> str:
        """DARTS's text form, pairs in the order this genotype holds them (inverse of :meth:`parse`)."""
        concat = list(CONCAT)
        return (
            f"Genotype(normal={self.normal_pairs()!r}, normal_concat={concat!r}, "
            f"reduce={self.reduce_pairs()!r}, reduce_concat={concat!r})"
        )

    def __str__(self) -> str:
        return self.format()


def node_of(pairs: Sequence[Pair]) -> Node:
    """Two ``(op, input)`` pairs as a :data:`Node`; only their number is checked (ValueError).

    :class:`DartsGenotype` checks the ops and inputs: this gives a node built in a loop its type.
    """
    first, second = pairs
    return (first, second)


def cell_of(nodes: Sequence[Node]) -> Cell:
    """Four nodes (2..5) as a :data:`Cell`; only their number is checked (ValueError)."""
    first, second, third, fourth = nodes
    return (first, second, third, fourth)


def _sorted_cell(cell: Cell) -> Cell:
    return cell_of([node_of(sorted(node, key=lambda pair: (pair[1], pair[0]))) for node in cell])


def _nodes_of(cell: str, pairs: Sequence[Pair]) -> Cell:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
        raise GenotypeError(f"{cell}: expected a list of 8 (op, input) pairs, got {type(pairs).__name__}")
    pairs = list(pairs)
    if len(pairs) != 2 * len(NODES):
        raise GenotypeError(
            f"{cell}: expected {2 * len(NODES)} (op, input) pairs (2 per node for nodes 2..5), got {len(pairs)}"
        )
    return cell_of([(pairs[2 * n], pairs[2 * n + 1]) for n in range(len(NODES))])


def _check_cell(cell: str, nodes: object) -> Cell:
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence) or len(nodes) != len(NODES):
        raise GenotypeError(
            f"{cell}: expected {len(NODES)} nodes (2..5) of 2 (op, input) pairs each, got {shown(nodes)}"
        )
    return cell_of([_check_node(cell, k, node) for k, node in zip(NODES, nodes)])


def _check_node(cell: str, k: int, node: object) -> Node:
    if isinstance(node, (str, bytes)) or not isinstance(node, Sequence) or len(node) != 2:
        raise GenotypeError(f"{cell} node {k}: expected 2 (op, input) pairs, got {shown(node)}")
    pairs = node_of([_check_pair(cell, k, pair) for pair in node])
    if pairs[0][1] == pairs[1][1]:
        raise GenotypeError(
            f"{cell} node {k}: both pairs take input {pairs[0][1]}; a node's two inputs must be different "
            "nodes (DARTS keeps the two strongest edges, from two different predecessors)"
        )
    return pairs


def _check_pair(cell: str, k: int, pair: object) -> Pair:
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise GenotypeError(f"{cell} node {k}: expected an (op, input) pair, got {shown(pair)}")
    op, source = pair
    if op == "none":
        raise GenotypeError(
            f"{cell} node {k}: op 'none' is the supernet's zero op, not a genotype op (DARTS derives "
            f"genotypes excluding it); expected one of {', '.join(GENOTYPE_OPS)}"
        )
    if op not in GENOTYPE_OPS:
        raise GenotypeError(f"{cell} node {k}: unknown op {shown(op)}; expected one of {', '.join(GENOTYPE_OPS)}")
    if isinstance(source, bool) or not isinstance(source, int):
        raise GenotypeError(f"{cell} node {k}: input of {shown(op)} must be an int node index, got {shown(source)}")
    if not 0 <= source < k:
        raise GenotypeError(f"{cell} node {k}: input {source} out of range; node {k} takes inputs 0..{k - 1}")
    return (op, source)


def as_genotype(genotype: DartsGenotype | str) -> DartsGenotype:
    """``genotype`` itself, or the genotype its ``Genotype(...)`` text describes (:func:`parse_genotype`).

    Raises:
        TypeError: neither a :class:`DartsGenotype` nor a str.
        GenotypeError: a text that describes no valid genotype.
    """
    if isinstance(genotype, DartsGenotype):
        return genotype
    if isinstance(genotype, str):
        return parse_genotype(genotype)
    raise TypeError(f"expected a DartsGenotype or its Genotype(...) text, got {type(genotype).__name__}")


def parse_genotype(text: str) -> DartsGenotype:
    """Parse DARTS's ``Genotype(normal=[...], normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=...)``.

    Accepted: keywords in any order, or the four fields positionally; whitespace and newlines; single
    or double quotes; pairs as tuples or lists; concat as a list, a tuple or ``range(2, 6)`` (it must
    be nodes 2..5; it may be left out); with or without the ``Genotype`` prefix (the bare keyword list
    ``normal=[...], reduce=[...]``). The text is read with :mod:`ast`, never evaluated.

    Raises:
        GenotypeError: the text is not such an expression, or describes no valid genotype; the
            message says what is wrong.
    """
    if not isinstance(text, str):
        raise GenotypeError(f"a genotype text must be a str, got {type(text).__name__}")
    fields = _fields_of(_expression(text), text)
    missing = [name for name in ("normal", "reduce") if name not in fields]
    if missing:
        raise GenotypeError(f"genotype {_short(text)} lacks {' and '.join(missing)}")
    for name in ("normal_concat", "reduce_concat"):
        if name in fields:
            _check_concat(name, fields[name])
    return DartsGenotype.from_pairs(_pairs(fields["normal"], "normal"), _pairs(fields["reduce"], "reduce"))


def _expression(text: str) -> ast.expr:
    stripped = text.strip()
    if not stripped:
        raise GenotypeError("not a Genotype expression: the text is empty")
    try:
        return ast.parse(stripped, mode="eval").body
    except SyntaxError:
        pass
    # Without the prefix the fields form a bare keyword list, which parses once wrapped in a call.
    try:
        return ast.parse(f"Genotype(\n{stripped}\n)", mode="eval").body
    except SyntaxError:
        raise GenotypeError(f"not a Genotype expression: {_short(text)}") from None


def _fields_of(expr: ast.expr, text: str) -> dict[str, ast.expr]:
    if isinstance(expr, ast.Dict):
        fields: dict[str, ast.expr] = {}
        for key, value in zip(expr.keys, expr.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise GenotypeError(f"genotype dict keys must be field names {', '.join(_FIELDS)}: {_short(text)}")
            fields[key.value] = value
        return _known(fields)
    if not (isinstance(expr, ast.Call) and _callee(expr.func) == "Genotype"):
        raise GenotypeError(
            f"not a Genotype expression (expected Genotype(normal=[...], normal_concat=[...], reduce=[...], "
            f"reduce_concat=[...])): {_short(text)}"
        )
    if len(expr.args) > len(_FIELDS):
        raise GenotypeError(
            f"Genotype takes at most {len(_FIELDS)} fields ({', '.join(_FIELDS)}), got {len(expr.args)}"
        )
    fields = {}
    for name, value in zip(_FIELDS, expr.args):
        if isinstance(value, ast.Starred):
            raise GenotypeError(f"Genotype fields must be written out, not unpacked: {_short(text)}")
        fields[name] = value
    for keyword in expr.keywords:
        if keyword.arg is None:
            raise GenotypeError(f"Genotype fields must be written out, not unpacked with **: {_short(text)}")
        if keyword.arg in fields:
            raise GenotypeError(f"Genotype field {shown(keyword.arg)} given twice")
        fields[keyword.arg] = keyword.value
    return _known(fields)


def _known(fields: dict[str, ast.expr]) -> dict[str, ast.expr]:
    unknown = [name for name in fields if name not in _FIELDS]
    if unknown:
        raise GenotypeError(f"unknown Genotype field(s) {clip(', '.join(unknown))}; expected {', '.join(_FIELDS)}")
    return fields


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):  # e.g. genotypes.Genotype(...)
        return func.attr
    return None


def _pairs(node: ast.expr, cell: str) -> list[Pair]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise GenotypeError(
            f"{cell} must be a literal list of (op, input) pairs, got {clip(ast.unparse(node))}"
        ) from None
    if not isinstance(value, (list, tuple)):
        raise GenotypeError(f"{cell} must be a list of (op, input) pairs, got {clip(ast.unparse(node))}")
    pairs = []
    for item in value:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise GenotypeError(f"{cell}: expected an (op, input) pair, got {shown(item)}")
        pairs.append((item[0], item[1]))
    return pairs


def _check_concat(name: str, node: ast.expr) -> None:
    value: object
    if isinstance(node, ast.Call) and _callee(node.func) == "range" and not node.keywords:
        try:
            bounds = [ast.literal_eval(arg) for arg in node.args]
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            bounds = None
        if bounds is None or not 1 <= len(bounds) <= 3 or not all(type(b) is int for b in bounds):
            raise GenotypeError(f"bad {name}: {clip(ast.unparse(node))} (expected [2, 3, 4, 5] or range(2, 6))")
        try:
            value = range(*bounds)  # compared as a range: range(2, 10**12) must not become a list
        except ValueError:  # a step of 0
            raise GenotypeError(
                f"bad {name}: {clip(ast.unparse(node))} (expected [2, 3, 4, 5] or range(2, 6))"
            ) from None
    else:
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise GenotypeError(
                f"bad {name}: {clip(ast.unparse(node))} (expected [2, 3, 4, 5] or range(2, 6))"
            ) from None
    if isinstance(value, range):  # CONCAT is consecutive nodes
        good = value == range(CONCAT[0], CONCAT[-1] + 1)
    else:
        good = isinstance(value, (list, tuple)) and all(type(v) is int for v in value) and tuple(value) == CONCAT
    if not good:
        raise GenotypeError(
            f"bad {name}: {clip(ast.unparse(node))}; a DARTS cell concatenates nodes [2, 3, 4, 5] (or range(2, 6))"
        )


def _short(text: str) -> str:
    return shown(" ".join(text.split()))


#: DARTS (first order), as published in the DARTS paper's code (``genotypes.py``).
DARTS_V1 = DartsGenotype.from_pairs(
    [
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 2),
    ],
    [
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("avg_pool_3x3", 0),
    ],
)  # fmt: skip

#: DARTS (second order), the cell of the DARTS paper's CIFAR-10 results.
DARTS_V2 = DartsGenotype.from_pairs(
    [
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0),
        ("skip_connect", 0), ("dil_conv_3x3", 2),
    ],
    [
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("max_pool_3x3", 1),
    ],
)  # fmt: skip
