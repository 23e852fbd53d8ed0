"""Sampling, mutation, neighbourhoods and the flat choice dict of DARTS genotypes.

The flat dict is what Optuna and NNI see. For each cell (``normal``, ``reduce``):

* ``{cell}/node{k}/inputs`` for nodes ``k = 3..5``: the two inputs as ``"i+j"`` with ``i < j < k``
  (node 2 always takes ``0+1`` and has no such choice);
* ``{cell}/node{k}/op0`` and ``{cell}/node{k}/op1`` for nodes ``k = 2..5``: the op on the smaller
  and on the larger input, one of :data:`GENOTYPE_OPS`.

This is the canonical form (:meth:`DartsGenotype.canonical`) written out, so the dict is a one-to-one
encoding of the isomorphism classes. Every function returns canonical genotypes, and every random
function takes an explicit ``random.Random``, so results depend on nothing else.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping

from teg_plugin.spaces._base import param_key_problem
from teg_plugin.spaces.darts._genotype import (
    CELLS,
    GENOTYPE_OPS,
    NODES,
    DartsGenotype,
    GenotypeError,
    Node,
    cell_of,
)

#: Node k -> its ``"i+j"`` input options, in lexicographic order.
INPUT_OPTIONS: dict[int, tuple[str, ...]] = {
    k: tuple(f"{i}+{j}" for i, j in itertools.combinations(range(k), 2)) for k in NODES
}

#: The op slots ``(cell, node index, side)``; side 0 is the op on the smaller input.
_OP_SLOTS = tuple((cell, n, side) for cell in CELLS for n in range(len(NODES)) for side in (0, 1))
#: The nodes ``(cell, node index)`` that choose their inputs (k >= 3), and their input slots.
_INPUT_NODES = tuple((cell, n) for cell in CELLS for n in range(1, len(NODES)))
_INPUT_SLOTS = tuple((cell, n, side) for cell, n in _INPUT_NODES for side in (0, 1))


def _names(cell: str, k: int) -> tuple[str, ...]:
    ops = (f"{cell}/node{k}/op0", f"{cell}/node{k}/op1")
    return ops if k == NODES[0] else (f"{cell}/node{k}/inputs", *ops)


def choices() -> dict[str, tuple[str, ...]]:
    """Choice name -> options, cell by cell and node by node (a fresh dict on every call)."""
    out: dict[str, tuple[str, ...]] = {}
    for cell in CELLS:
        for k in NODES:
            for name in _names(cell, k):
                out[name] = INPUT_OPTIONS[k] if name.endswith("/inputs") else GENOTYPE_OPS
    return out


def to_params(genotype: DartsGenotype) -> dict[str, str]:
    """``genotype``'s canonical form as a flat choice dict (inverse of :func:`from_params`)."""
    canonical = genotype.canonical()
    params: dict[str, str] = {}
    for cell in CELLS:
        for k, ((op0, i), (op1, j)) in zip(NODES, canonical.cell(cell)):
            if k != NODES[0]:
                params[f"{cell}/node{k}/inputs"] = f"{i}+{j}"
            params[f"{cell}/node{k}/op0"] = op0
            params[f"{cell}/node{k}/op1"] = op1
    return params


def from_params(params: Mapping[str, str]) -> DartsGenotype:
    """The canonical genotype of a flat dict with exactly the keys of :func:`choices`.

    Raises:
        GenotypeError: keys are missing or unexpected, or a value is not one of its key's options
            (the message names them).
    """
    options = choices()
    problem = param_key_problem(params, list(options))
    if problem:
        raise GenotypeError(f"bad DARTS params: {problem}")
    bad = [f"{name}={params[name]!r} (expected one of {', '.join(allowed)})" for name, allowed in options.items()
           if params[name] not in allowed]  # fmt: skip
    if bad:
        raise GenotypeError(f"bad DARTS params: {'; '.join(bad)}")
    cells = []
    for cell in CELLS:
        nodes = []
        for k in NODES:
            i, j = (0, 1) if k == NODES[0] else map(int, params[f"{cell}/node{k}/inputs"].split("+"))
            nodes.append(((params[f"{cell}/node{k}/op0"], i), (params[f"{cell}/node{k}/op1"], j)))
        cells.append(cell_of(nodes))
    return DartsGenotype(*cells)


def sample(rng: random.Random) -> DartsGenotype:
    """A uniformly random canonical genotype: one ``rng.choice`` per choice, in :func:`choices` order."""
    return from_params({name: rng.choice(options) for name, options in choices().items()})


def mutate(genotype: DartsGenotype, rng: random.Random) -> DartsGenotype:
    """A random neighbour of ``genotype`` (canonical, never equal to ``genotype.canonical()``).

    With probability 1/2 (``rng.random() < 0.5``) one op is switched: a uniformly chosen op slot of
    the 16 gets a uniformly chosen different op. Otherwise one input is switched: a uniformly chosen
    node with ``k >= 3`` (of 6) and one of its two inputs, replaced by a uniformly chosen predecessor
    that node does not use yet, keeping the op.
    """
    canonical = genotype.canonical()
    if rng.random() < 0.5:
        cell, n, side = _OP_SLOTS[rng.randrange(len(_OP_SLOTS))]
        op, source = canonical.cell(cell)[n][side]
        return _replace(canonical, cell, n, side, (rng.choice([o for o in GENOTYPE_OPS if o != op]), source))
    cell, n = _INPUT_NODES[rng.randrange(len(_INPUT_NODES))]
    side = rng.randrange(2)
    op, _ = canonical.cell(cell)[n][side]
    return _replace(canonical, cell, n, side, (op, rng.choice(_free_inputs(canonical, cell, n))))


def neighbours(genotype: DartsGenotype) -> list[DartsGenotype]:
    """Every canonical genotype one op switch or one input switch away from ``genotype``.

    Op switches first (slot by slot, cell, node, then smaller/larger input, new ops in
    :data:`GENOTYPE_OPS` order), then input switches (cell, node, side, new input ascending). That is
    120 genotypes, all distinct.
    """
    canonical = genotype.canonical()
    found: dict[DartsGenotype, None] = {}
    for cell, n, side in _OP_SLOTS:
        op, source = canonical.cell(cell)[n][side]
        for new_op in GENOTYPE_OPS:
            if new_op != op:
                found.setdefault(_replace(canonical, cell, n, side, (new_op, source)))
    for cell, n, side in _INPUT_SLOTS:
        op, _ = canonical.cell(cell)[n][side]
        for new_source in _free_inputs(canonical, cell, n):
            found.setdefault(_replace(canonical, cell, n, side, (op, new_source)))
    found.pop(canonical, None)
    return list(found)


def _free_inputs(genotype: DartsGenotype, cell: str, n: int) -> list[int]:
    used = {source for _, source in genotype.cell(cell)[n]}
    return [i for i in range(NODES[n]) if i not in used]


def _replace(genotype: DartsGenotype, cell: str, n: int, side: int, pair: tuple[str, int]) -> DartsGenotype:
    nodes: list[Node] = list(genotype.cell(cell))
    node = list(nodes[n])
    node[side] = pair
    nodes[n] = (node[0], node[1])
    cells = {name: genotype.cell(name) for name in CELLS}
    cells[cell] = cell_of(nodes)
    return DartsGenotype(**cells).canonical()
