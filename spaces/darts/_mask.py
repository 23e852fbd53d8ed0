"""Supernet masks of the DARTS space: which ops are active on which edge of each cell type.

A mask maps ``"{cell}/{k}<-{i}"`` (cell ``normal`` or ``reduce``, edge from node ``i`` into node
``k``, ``i < k``; :data:`MASK_KEYS` fixes the 28 keys and their order) to the tuple of ops active on
that edge, in :data:`OPS` order. An edge that is missing or maps to ``()`` carries no op. A genotype's
mask has, per node, its two chosen edges with one op each.

The full supernet (:func:`full_mask`) carries the seven :data:`GENOTYPE_OPS` on every edge. It leaves
out ``none``: TE-NAS removes the zero op from the DARTS supernet before pruning (a zero op adds
nothing to a sum of ops), and no genotype can hold it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from teg_plugin.spaces.darts._genotype import CELLS, GENOTYPE_OPS, NODES, OPS, DartsGenotype, cell_of, node_of

#: The edges of a cell as ``(to_node, from_node)``, node by node.
EDGES: tuple[tuple[int, int], ...] = tuple((k, i) for k in NODES for i in range(k))

#: Edge names inside one cell (``"3<-1"``: from node 1 into node 3), in :data:`EDGES` order.
EDGE_NAMES: tuple[str, ...] = tuple(f"{k}<-{i}" for k, i in EDGES)

#: The mask keys: every edge of the normal cell, then of the reduction cell.
MASK_KEYS: tuple[str, ...] = tuple(f"{cell}/{edge}" for cell in CELLS for edge in EDGE_NAMES)


def check_mask(mask: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``mask`` with every key of :data:`MASK_KEYS` (missing ones empty), ops in :data:`OPS` order.

    Raises:
        ValueError: an unknown key or op (the message names them).
    """
    unknown_keys = sorted(str(key) for key in mask if key not in MASK_KEYS)
    if unknown_keys:
        raise ValueError(
            f"unknown DARTS mask key(s) {', '.join(unknown_keys)}; keys look like 'normal/3<-1' "
            "(cell normal or reduce, edge k<-i with 2 <= k <= 5 and i < k)"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for key in MASK_KEYS:
        ops = mask.get(key, ())
        if isinstance(ops, str):
            raise ValueError(f"mask key {key}: expected a sequence of ops, got the string {ops!r}")
        bad = [op for op in ops if op not in OPS]
        if bad:
            raise ValueError(f"unknown DARTS op(s) {bad} on {key}; expected ops among {', '.join(OPS)}")
        checked[key] = tuple(op for op in OPS if op in ops)
    return checked


def cell_edges(mask: Mapping[str, Sequence[str]], cell: str) -> dict[str, tuple[str, ...]]:
    """Edge name (``"3<-1"``) -> active ops, for cell type ``cell`` of a checked mask."""
    return {edge: tuple(mask.get(f"{cell}/{edge}", ())) for edge in EDGE_NAMES}


def genotype_mask(genotype: DartsGenotype) -> dict[str, tuple[str, ...]]:
    """The mask of ``genotype``: its op on each chosen edge, ``()`` on the other edges."""
    mask: dict[str, tuple[str, ...]] = {key: () for key in MASK_KEYS}
    for cell in CELLS:
        for k, node in zip(NODES, genotype.cell(cell)):
            for op, source in node:
                mask[f"{cell}/{k}<-{source}"] = (op,)
    return mask


def full_mask() -> dict[str, tuple[str, ...]]:
    """The whole supernet, as TE-NAS prunes it: every :data:`GENOTYPE_OPS` op on every edge."""
    return {key: GENOTYPE_OPS for key in MASK_KEYS}


def genotype_from_mask(mask: Mapping[str, Sequence[str]]) -> DartsGenotype:
    """The canonical genotype of a mask with, per node, exactly two non-empty edges of one op each.

    Raises:
        ValueError: unknown keys or ops, or a node whose edges are not two of one op each (the
            message names the node and its active edges).
    """
    checked = check_mask(mask)
    cells = []
    for cell in CELLS:
        nodes = []
        for k in NODES:
            active = {i: checked[f"{cell}/{k}<-{i}"] for i in range(k) if checked[f"{cell}/{k}<-{i}"]}
            shown = ", ".join(f"{k}<-{i}: {list(ops)}" for i, ops in active.items()) or "none"
            if len(active) != 2:
                raise ValueError(
                    f"{cell} node {k} needs exactly 2 active incoming edges to name a genotype, got "
                    f"{len(active)} ({shown})"
                )
            if any(len(ops) != 1 for ops in active.values()):
                raise ValueError(f"{cell} node {k}: each active edge must carry exactly one op, got {shown}")
            nodes.append(node_of([(ops[0], i) for i, ops in active.items()]))
        cells.append(cell_of(nodes))
    return DartsGenotype(*cells).canonical()


def mask_groups() -> list[tuple[tuple[str, ...], int]]:
    """Per cell and node, ``(the keys of its incoming edges, 2)``: at most 2 of them may stay active."""
    return [(tuple(f"{cell}/{k}<-{i}" for i in range(k)), 2) for cell in CELLS for k in NODES]
