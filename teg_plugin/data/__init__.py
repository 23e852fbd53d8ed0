"""Image datasets for scoring: a uniform in-memory `ImageData` pool and `load_data` to build one.

Every loader returns a dataset's TRAINING split; test splits are never used for scoring.
"""

from __future__ import annotations

from .errors import DataNotFoundError
from .image_data import ImageData
from .loader import DATA_ROOT_ENV, DATASET_NAMES, NUM_CLASSES, dataset_kind, default_data_root, load_data

__all__ = [
    "DATASET_NAMES",
    "DATA_ROOT_ENV",
    "NUM_CLASSES",
    "DataNotFoundError",
    "ImageData",
    "dataset_kind",
    "default_data_root",
    "load_data",
]
