"""Readers for benchmark ground truth and published proxy tables (benchmarks and reports only).

**Search code must never import this module**: it reads accuracies.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Collection
from pathlib import Path


def _open_table(path: str | os.PathLike[str], what: str) -> list[dict[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {file}")
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError as err:
        raise ValueError(f"{file} is not a UTF-8 CSV table ({err.reason} at byte {err.start})") from None
    if not rows:
        raise ValueError(f"{file} holds no rows")
    return rows


def _float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_columns(
    path: str | os.PathLike[str],
    key: str = "arch_str",
    *,
    what: str = "table",
    expected: Collection[str] = (),
) -> dict[str, dict[str, float]]:
    """``{row[key]: {column: float}}`` for every numeric column of a CSV table (NaN when empty).

    Args:
        path: the CSV file.
        key: the column that keys the rows.
        what: what the table is, for the error messages (e.g. ``"published-proxy table"``).
        expected: columns the caller reads; a table holding none of them is refused (a wrong file).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a UTF-8 CSV, no rows, no ``key`` column, or none of ``expected``.
    """
    rows = _open_table(path, what)
    if key not in rows[0]:
        raise ValueError(f"{what} {path} has no {key!r} column; columns: {', '.join(rows[0])}")
    if expected and not set(expected) & set(rows[0]):
        raise ValueError(
            f"{what} {path} holds none of the columns {', '.join(expected)}; its columns: {', '.join(rows[0])}"
        )
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        table[row[key]] = {c: _float(v) for c, v in row.items() if c != key}
    return table


def read_truth(path: str | os.PathLike[str], column: str = "cifar10_test") -> dict[str, float]:
    """Arch string -> accuracy from an NB201 ground-truth CSV (``arch_str`` and ``column``)."""
    rows = _open_table(path, "ground-truth table")
    for needed in ("arch_str", column):
        if needed not in rows[0]:
            raise ValueError(f"{path} has no {needed!r} column; columns: {', '.join(rows[0])}")
    return {row["arch_str"]: _float(row[column]) for row in rows}
