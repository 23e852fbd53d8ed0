"""CIFAR-10 / CIFAR-100 training splits through torchvision's loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import DataNotFoundError
from .image_data import ImageData

# Per-channel statistics of the training splits, in [0, 1] pixel units.
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)

# name -> (display name, folder torchvision uses, mean, std)
_CIFAR = {
    "cifar10": ("CIFAR-10", "cifar-10-batches-py", CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": ("CIFAR-100", "cifar-100-python", CIFAR100_MEAN, CIFAR100_STD),
}


def load_cifar(name: str, root: Path, *, download: bool) -> ImageData:
    """The 50,000-image training split of ``name`` (``"cifar10"`` or ``"cifar100"``) under ``root``.

    Raises:
        DataNotFoundError: if the files are missing or corrupted and ``download`` is false, or the
            download failed.
    """
    display, folder, mean, std = _CIFAR[name]
    if not download and not (root / folder).is_dir():
        raise _not_found(display, root / folder)
    from torchvision import datasets  # deferred: importing torchvision costs about a second

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root_existed = root.exists()
    try:
        dataset = cls(str(root), train=True, download=download)
    except RuntimeError as err:
        if download or "not found" not in str(err).lower():
            raise
        raise _not_found(display, root / folder) from err
    except OSError as err:  # no network, refused connection, disk full...
        if not download:
            raise
        if not root_existed and root.is_dir() and not any(root.iterdir()):
            root.rmdir()  # leave no empty folder behind
        reason = getattr(err, "reason", None) or err.strerror or err
        raise DataNotFoundError(f"could not download {display} into {root}: {reason}") from err
    data = np.asarray(dataset.data, dtype=np.uint8)  # (N, 32, 32, 3)
    images = torch.from_numpy(data).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return ImageData(
        name=name,
        images=images,
        labels=labels,
        num_classes=len(dataset.classes),
        mean=mean,
        std=std,
        source=str((root / folder).resolve()),
    )


def _not_found(display: str, path: Path) -> DataNotFoundError:
    return DataNotFoundError(
        f"{display} not found (or corrupted) in {path}; pass --download / download=True to fetch it "
        f"there, or point --data-root / root at the folder that contains {path.name}/"
    )
