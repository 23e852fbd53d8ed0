"""Image folders in torchvision ``ImageFolder`` layout: ``root/<class>/**/<image>``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import DataNotFoundError
from .image_data import ImageData

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def load_folder(root: Path, *, image_size: int) -> ImageData:
    """Every image under ``root``'s class subfolders, as RGB ``image_size`` x ``image_size``.

    Classes are the subfolders of ``root`` (hidden ones skipped) in sorted order, labelled ``0..K-1``
    as ``ImageFolder`` does; images are found recursively by extension. Each image is resized so its
    shorter side is ``image_size`` and centre-cropped to a square. ``mean`` and ``std`` are computed
    from the loaded pixels.

    Raises:
        DataNotFoundError: if ``root`` is not a directory, has no class subfolders, or a class
            subfolder holds no image.
        ValueError: if ``root`` has a single class subfolder, or an image cannot be read.
    """
    if not root.is_dir():
        raise DataNotFoundError(f"image folder {root} does not exist (expected {root}/<class>/<image>.png)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataNotFoundError(f"image folder {root} has no class subfolders (expected {root}/<class>/<image>.png)")
    if len(classes) < 2:
        raise ValueError(
            f"image folder {root} has one class subfolder ({classes[0]}); G needs labelled "
            f"images of at least 2 classes (expected {root}/<class>/<image>.png per class)"
        )
    files: list[tuple[Path, int]] = []
    empty: list[str] = []
    for label, cls in enumerate(classes):
        found = sorted(p for p in (root / cls).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            empty.append(cls)
        files.extend((p, label) for p in found)
    if empty:
        raise DataNotFoundError(
            f"image folder {root}: no image ({', '.join(IMAGE_EXTENSIONS)}) in class subfolder(s) {', '.join(empty)}"
        )
    pixels = np.stack([_read_image(path, image_size) for path, _ in files])  # (N, H, W, 3)
    scaled = pixels.astype(np.float64) / 255.0
    mean = tuple(float(m) for m in scaled.mean(axis=(0, 1, 2)))
    # A constant channel has std 0, which cannot normalise; leave such a channel unscaled.
    std = tuple(float(s) if s > 0 else 1.0 for s in scaled.std(axis=(0, 1, 2)))
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return ImageData(
        name="folder",
        images=images,
        labels=labels,
        num_classes=len(classes),
        mean=mean,
        std=std,
        source=str(root.resolve()),
    )


def _read_image(path: Path, size: int) -> np.ndarray:
    import warnings

    from PIL import Image  # deferred: only folder datasets need Pillow

    try:
        with warnings.catch_warnings():
            # Pillow only warns for an image over its pixel limit (and refuses one over twice that):
            # refuse both, before decoding, rather than fill the memory with a decompression bomb.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                rgb = img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(
            f"cannot read image {path}: it claims more pixels than Pillow's safety limit "
            f"({Image.MAX_IMAGE_PIXELS}); resize it, or remove it from the folder"
        ) from err
    except OSError as err:
        raise ValueError(f"cannot read image {path}: {err}") from err
    width, height = rgb.size
    if (width, height) != (size, size):
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        rgb = rgb.crop((left, top, left + size, top + size))
    return np.asarray(rgb, dtype=np.uint8)
