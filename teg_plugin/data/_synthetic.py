"""A deterministic random dataset for tests: no files, same pixels on every machine."""

from __future__ import annotations

import torch

from .image_data import ImageData

NUM_CLASSES = 10
_N, _SHAPE, _SEED = 512, (3, 32, 32), 0


def load_synthetic() -> ImageData:
    """512 uniformly random uint8 images of shape (3, 32, 32), balanced labels ``i % 10``, mean/std 0.5."""
    generator = torch.Generator().manual_seed(_SEED)
    images = torch.randint(0, 256, (_N, *_SHAPE), dtype=torch.uint8, generator=generator)
    labels = torch.arange(_N, dtype=torch.int64) % NUM_CLASSES
    return ImageData(
        name="synthetic",
        images=images,
        labels=labels,
        num_classes=NUM_CLASSES,
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        source=f"synthetic: {_N} random uint8 images, torch seed {_SEED}",
    )
