"""ImageNet16-120: the 16x16 downsampled-ImageNet training files, restricted to 120 classes.

The files (Chrabaszcz et al., 2017, as used by NAS-Bench-201) are pickled dicts with ``data``, a
uint8 array of shape ``(N, 3 * 16 * 16)`` holding each image channel-major, and ``labels``, ints in
``1..1000``. ImageNet16-120 keeps the images with label ``<= 120`` and relabels them ``0..119``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DataNotFoundError
from .image_data import ImageData

NUM_CLASSES = 120
_SIDE = 16
_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
_MEAN = (0.4811, 0.4575, 0.4078)
_STD = (0.2605, 0.2533, 0.2683)

# The files only need numpy's array reconstructors; refusing every other global means a tampered
# file cannot run code when unpickled.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays, lists "
                f"and dicts are expected in an ImageNet16 file"
            )
        return super().find_class(module, name)


def load_imagenet16_120(root: Path) -> ImageData:
    """The ImageNet16-120 training split from ``train_data_batch_{1..10}`` in ``root`` or ``root/ImageNet16``.

    Raises:
        DataNotFoundError: if neither folder holds all ten files (they cannot be downloaded
            automatically).
        ValueError: if a file does not have the expected layout.
    """
    folder = _find_folder(root)
    images, labels = [], []
    for file_name in _FILES:
        data, raw_labels = _read_batch(folder / file_name)
        keep = (raw_labels >= 1) & (raw_labels <= NUM_CLASSES)
        images.append(data[keep])
        labels.append(raw_labels[keep] - 1)
    all_images = np.concatenate(images).reshape(-1, 3, _SIDE, _SIDE)
    all_labels = np.concatenate(labels)
    if all_images.shape[0] == 0:
        raise ValueError(f"ImageNet16 files in {folder} hold no image with a label in 1..{NUM_CLASSES}")
    return ImageData(
        name="imagenet16-120",
        images=torch.from_numpy(np.ascontiguousarray(all_images)),
        labels=torch.from_numpy(all_labels.astype(np.int64)),
        num_classes=NUM_CLASSES,
        mean=_MEAN,
        std=_STD,
        source=str(folder.resolve()),
    )


def _find_folder(root: Path) -> Path:
    candidates = (root, root / "ImageNet16")
    for folder in candidates:
        if all((folder / f).is_file() for f in _FILES):
            return folder
    looked = " and ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"ImageNet16-120 not found: looked for {_FILES[0]} ... {_FILES[-1]} in {looked}. It cannot be "
        f"downloaded automatically: get the 16x16 downsampled ImageNet training files (as used by "
        f"NAS-Bench-201) and put them in <data-root>/ImageNet16/"
    )


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as f:
        # latin1 decodes the Python 2 byte strings inside numpy arrays pickled by Python 2.
        entry = _ArrayUnpickler(f, encoding="latin1").load()
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise ValueError(f"{path}: expected a pickled dict with 'data' and 'labels'")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["labels"], dtype=np.int64).reshape(-1)
    row = 3 * _SIDE * _SIDE
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != row:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, {row}); got {data.dtype} {data.shape}")
    if labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but {labels.shape[0]} labels")
    return data, labels
