"""Build ``teg_plugin/_resources/cifar10_sample.npz`` from the project's shared CIFAR-10 JPEG subset.

Usage::

    python -m teg_plugin.data._make_embedded_sample SOURCE_NPZ [OUTPUT_NPZ]

``SOURCE_NPZ`` is ``cifar10_train_5000_jpeg.npz`` (arrays ``images``, ``labels``,
``index_within_class``). The output keeps the first ``PER_CLASS`` training images of each class, in
class order: arrays ``images`` uint8 (N, 32, 32, 3), ``labels`` uint8 and ``source_index`` (row in
the source file). It is written by ``np.savez_compressed``, then its zip timestamps are pinned so that
rebuilding gives the same bytes (and SHA-256).
"""

from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

PER_CLASS = 50
NUM_CLASSES = 10
EXPECTED_SOURCE_SHA256 = "bf486e3c99ec49bd5430cd5bda41913c47bdac66c401ce37d55d6f19c972d213"
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "_resources" / "cifar10_sample.npz"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def select_sample(source: Path, per_class: int = PER_CLASS) -> dict[str, np.ndarray]:
    """The first ``per_class`` images of each class of ``source`` (by ``index_within_class``)."""
    with np.load(source, allow_pickle=False) as npz:
        images, labels, within = npz["images"], npz["labels"], npz["index_within_class"]
    rows = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(labels == label)
        members = members[np.argsort(within[members], kind="stable")]
        if members.size < per_class:
            raise ValueError(f"{source}: class {label} has {members.size} images, fewer than {per_class}")
        rows.append(members[:per_class])
    index = np.concatenate(rows)
    return {
        "images": np.ascontiguousarray(images[index], dtype=np.uint8),
        "labels": labels[index].astype(np.uint8),
        "source_index": index.astype(np.int64),
    }


def write_npz(arrays: dict[str, np.ndarray], output: Path) -> None:
    """``np.savez_compressed(output, **arrays)`` with fixed zip timestamps (reproducible bytes)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stub misreads **kwds
    pinned = io.BytesIO()
    with zipfile.ZipFile(buffer) as zin, zipfile.ZipFile(pinned, "w") as zout:
        for info in zin.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            fixed.compress_type = info.compress_type
            fixed.external_attr = info.external_attr
            zout.writestr(fixed, zin.read(info))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(pinned.getvalue())


def sha256(path: Path) -> str:
    """SHA-256 hex digest of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the output path, size and both SHA-256 digests."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(args[0])
    output = Path(args[1]) if len(args) == 2 else DEFAULT_OUTPUT
    source_sha = sha256(source)
    if source_sha != EXPECTED_SOURCE_SHA256:
        print(
            f"warning: {source} has SHA-256 {source_sha}, not the documented {EXPECTED_SOURCE_SHA256}", file=sys.stderr
        )
    arrays = select_sample(source)
    write_npz(arrays, output)
    print(f"wrote {output} ({output.stat().st_size} bytes, {arrays['images'].shape[0]} images)")
    print(f"source sha256 {source_sha}")
    print(f"output sha256 {sha256(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
