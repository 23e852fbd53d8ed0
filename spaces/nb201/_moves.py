"""Sampling, mutation, neighbourhoods and the flat parameter dict of NB201 cells.

The flat dict maps each edge name of :data:`EDGE_NAMES` (``"2<-1"``) to its op; it is what Optuna and
NNI see. Every random function takes an explicit ``random.Random`` so results depend on nothing else.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from teg_plugin.spaces._base import param_key_problem
from teg_plugin.spaces.nb201._arch import EDGE_NAMES, OPS, ArchStringError, NB201Arch


def sample(rng: random.Random) -> NB201Arch:
    """A uniformly random cell: one ``rng.choice(OPS)`` per edge, in edge order."""
    return NB201Arch(tuple(rng.choice(OPS) for _ in EDGE_NAMES))


def mutate(arch: NB201Arch, rng: random.Random) -> NB201Arch:
    """``arch`` with one uniformly chosen edge switched to a uniformly chosen *different* op.

    Draws ``rng.randrange(6)`` for the edge, then ``rng.choice`` over the four other ops (OPS order).
    """
    edge = rng.randrange(len(EDGE_NAMES))
    op = rng.choice([o for o in OPS if o != arch.ops[edge]])
    return _replace(arch, edge, op)


def neighbours(arch: NB201Arch) -> list[NB201Arch]:
    """The 24 cells that differ from ``arch`` on exactly one edge, ordered by edge, then by OPS order."""
    return [_replace(arch, edge, op) for edge in range(len(EDGE_NAMES)) for op in OPS if op != arch.ops[edge]]


def choices() -> dict[str, tuple[str, ...]]:
    """Edge name -> the ops it can take, edges in arch-string order (a fresh dict on every call)."""
    return {name: OPS for name in EDGE_NAMES}


def to_params(arch: NB201Arch) -> dict[str, str]:
    """``arch`` as ``{"1<-0": op, "2<-0": op, ...}`` (inverse of :func:`from_params`)."""
    return dict(zip(EDGE_NAMES, arch.ops, strict=True))


def from_params(params: Mapping[str, str]) -> NB201Arch:
    """The cell described by a flat dict with exactly the keys of :func:`choices`.

    Raises:
        ArchStringError: keys are missing or unexpected, or a value is not an op of :data:`OPS`
            (the message names the offending keys / values).
    """
    problem = param_key_problem(params, EDGE_NAMES)
    if problem:
        raise ArchStringError(f"bad NB201 params: {problem}; expected keys {', '.join(EDGE_NAMES)}")
    unknown = [f"{name}={params[name]!r}" for name in EDGE_NAMES if params[name] not in OPS]
    if unknown:
        raise ArchStringError(f"unknown op(s) {', '.join(unknown)}; expected one of {', '.join(OPS)}")
    return NB201Arch(tuple(params[name] for name in EDGE_NAMES))


def _replace(arch: NB201Arch, edge: int, op: str) -> NB201Arch:
    ops = list(arch.ops)
    ops[edge] = op
    return NB201Arch(tuple(ops))
