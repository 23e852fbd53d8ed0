"""The CIFAR-10 sample shipped inside the package (see ``_resources/PROVENANCE.md``)."""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch

from ._cifar import CIFAR10_MEAN, CIFAR10_STD
from .image_data import ImageData

RESOURCE = "cifar10_sample.npz"
NUM_CLASSES = 10


def load_embedded() -> ImageData:
    """500 CIFAR-10 training images (the first 50 of each class, decoded from JPEG copies).

    Uses the standard CIFAR-10 mean/std so that scores match the full dataset's normalisation.
    """
    resource = resources.files("teg_plugin") / "_resources" / RESOURCE
    with resource.open("rb") as f, np.load(f, allow_pickle=False) as npz:
        pixels = np.asarray(npz["images"], dtype=np.uint8)  # (N, 32, 32, 3)
        labels = np.asarray(npz["labels"], dtype=np.int64)
    if pixels.ndim != 4 or pixels.shape[3] != 3:
        raise ValueError(f"embedded sample {RESOURCE}: expected images of shape (N, H, W, 3); got {pixels.shape}")
    return ImageData(
        name="embedded",
        images=torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(),
        labels=torch.from_numpy(labels),
        num_classes=NUM_CLASSES,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        source=f"embedded CIFAR-10 sample ({pixels.shape[0]} train images decoded from JPEG, "
        f"teg_plugin/_resources/{RESOURCE})",
    )
