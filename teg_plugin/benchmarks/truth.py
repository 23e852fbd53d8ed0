"""Readers for benchmark ground truth and published proxy tables (benchmarks and reports only).

**Search code must never import this module**: it reads accuracies.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path


def _open_table(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"ground-truth table not found: {file}")
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


def read_columns(path: str | os.PathLike[str], key: str = "arch_str") -> dict[str, dict[str, float]]:
    """``{row[key]: {column: float}}`` for every numeric column of a CSV table (NaN when empty)."""
    rows = _open_table(path)
    if key not in rows[0]:
        raise ValueError(f"{path} has no {key!r} column; columns: {', '.join(rows[0])}")
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        table[row[key]] = {c: _float(v) for c, v in row.items() if c != key}
    return table


def read_truth(path: str | os.PathLike[str], column: str = "cifar10_test") -> dict[str, float]:
    """Arch string -> accuracy from an NB201 ground-truth CSV (``arch_str`` and ``column``)."""
    rows = _open_table(path)
    for needed in ("arch_str", column):
        if needed not in rows[0]:
            raise ValueError(f"{path} has no {needed!r} column; columns: {', '.join(rows[0])}")
    return {row["arch_str"]: _float(row[column]) for row in rows}
