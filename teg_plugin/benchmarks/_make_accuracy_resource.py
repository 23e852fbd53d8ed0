"""Build ``teg_plugin/_resources/nb201_cifar10_accuracy.npz`` from the NB201 ground-truth CSV.

Usage::

    python -m teg_plugin.benchmarks._make_accuracy_resource /path/to/nb201_ground_truth.csv [--out PATH]

The CSV is ``shared/data/nb201/nb201_ground_truth.csv`` (see ``teg_plugin/_resources/PROVENANCE.md``).
Only ``cifar10_valid`` and ``cifar10_test`` are kept, as float32 arrays in NB201 index order; the cell
of each position follows from the index (:func:`teg_plugin.spaces.nb201._index.arch_at`), which is
checked against the CSV's ``arch_str`` for every row. The archive is written with fixed zip
timestamps, so the same CSV always gives a byte-identical file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from teg_plugin.spaces.nb201._index import NUM_ARCHS, arch_at

#: The columns kept, in the archive's member order.
COLUMNS: tuple[str, ...] = ("cifar10_valid", "cifar10_test")

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "_resources" / "nb201_cifar10_accuracy.npz"

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def read_columns(csv_path: Path) -> dict[str, np.ndarray]:
    """The kept columns of ``csv_path`` as float32 arrays in index order.

    Raises:
        ValueError: the CSV lacks a column, is not exactly one row per index 0..15624 in order, has an
            ``arch_str`` that differs from the reproduced index order, or has a missing / non-finite value.
    """
    values: dict[str, list[float]] = {name: [] for name in COLUMNS}
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        absent = [name for name in ("index", "arch_str", *COLUMNS) if name not in (reader.fieldnames or ())]
        if absent:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(absent)}")
        for position, row in enumerate(reader):
            if int(row["index"]) != position:
                raise ValueError(f"{csv_path}: row {position} has index {row['index']}; rows must be sorted 0..")
            if position >= NUM_ARCHS:
                raise ValueError(f"{csv_path}: more than {NUM_ARCHS} rows")
            expected = arch_at(position).to_str()
            if row["arch_str"] != expected:
                raise ValueError(
                    f"{csv_path}: index {position} is {row['arch_str']!r} but the seed-88 order gives {expected!r}"
                )
            for name in COLUMNS:
                value = float(row[name])
                if not math.isfinite(value):
                    raise ValueError(f"{csv_path}: index {position} has non-finite {name} {row[name]!r}")
                values[name].append(value)
    count = len(values[COLUMNS[0]])
    if count != NUM_ARCHS:
        raise ValueError(f"{csv_path}: {count} rows, expected {NUM_ARCHS}")
    return {name: np.asarray(column, dtype=np.float32) for name, column in values.items()}


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write ``arrays`` as a deflated ``.npz`` readable by ``np.load`` (deterministic bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: read the CSV, write the resource, print both SHA-256 digests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, help="path to nb201_ground_truth.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output .npz (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    arrays = read_columns(args.csv)
    write_npz(arrays, args.out)
    print(f"source {args.csv}  sha256 {sha256_of(args.csv)}")
    print(f"wrote  {args.out}  sha256 {sha256_of(args.out)}  ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
