"""`ImageData`: an in-memory labelled image pool with its normalisation statistics."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class ImageData:
    """A labelled pool of images kept as uint8, normalised on the way out by :meth:`batch`.

    Attributes:
        name: Canonical dataset name (e.g. ``"cifar10"``, ``"embedded"``).
        images: uint8 tensor of shape ``(N, C, H, W)``.
        labels: int64 tensor of shape ``(N,)`` with values in ``[0, num_classes)``.
        num_classes: Number of classes of the task (may exceed the classes present in ``labels``).
        mean: Per-channel mean in ``[0, 1]`` pixel units, ``len(mean) == C``.
        std: Per-channel standard deviation in ``[0, 1]`` pixel units, each ``> 0``.
        source: Human-readable provenance (a path, or a description of the embedded sample).

    ``mean`` and ``std`` are stored as tuples of floats whatever sequence was passed. Equality is
    identity (``eq=False``): compare datasets with :meth:`fingerprint`. The tensors are not copied;
    do not mutate them after construction.

    Raises:
        ValueError: at construction, if any of the constraints above does not hold.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"ImageData {self.name!r}: images must be a uint8 tensor of shape (N, C, H, W); got {_describe(images)}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.dim() != 1:
            raise ValueError(
                f"ImageData {self.name!r}: labels must be an int64 tensor of shape (N,); got {_describe(labels)}"
            )
        n = images.shape[0]
        if n < 1:
            raise ValueError(f"ImageData {self.name!r}: needs at least one image; got N=0")
        if labels.shape[0] != n:
            raise ValueError(f"ImageData {self.name!r}: {n} images but {labels.shape[0]} labels")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 2:
            # With one class the centred one-hot targets of G (kernel regression) are all zero.
            raise ValueError(
                f"ImageData {self.name!r}: num_classes must be an int >= 2 (a classification task; "
                f"G regresses on centred one-hot labels); got {self.num_classes!r}"
            )
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise ValueError(
                f"ImageData {self.name!r}: labels must lie in [0, {self.num_classes}); got values in [{low}, {high}]"
            )
        channels = images.shape[1]
        mean, std = _floats(self.name, "mean", self.mean), _floats(self.name, "std", self.std)
        if len(mean) != channels or len(std) != channels:
            raise ValueError(
                f"ImageData {self.name!r}: mean and std need one value per channel ({channels}); "
                f"got len(mean)={len(mean)}, len(std)={len(std)}"
            )
        if not all(math.isfinite(m) for m in mean):
            raise ValueError(f"ImageData {self.name!r}: every mean must be finite; got {mean}")
        if not all(math.isfinite(s) and s > 0 for s in std):
            raise ValueError(f"ImageData {self.name!r}: every std must be finite and > 0; got {std}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of every image."""
        _, c, h, w = self.images.shape
        return int(c), int(h), int(w)

    def batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels at ``indices``, in that order (repeats allowed).

        Returns:
            ``(x, y)``: ``x`` float32 ``(B, C, H, W)`` equal to ``(images / 255 - mean) / std`` per
            channel; ``y`` int64 ``(B,)``. Both are new tensors.

        Raises:
            TypeError: if ``indices`` are not integers.
            IndexError: if an index is outside ``[0, len(self))``.
        """
        idx = torch.as_tensor(indices)
        if idx.numel() == 0:
            idx = idx.to(torch.int64)  # an empty list becomes float32 in as_tensor
        elif idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
            raise TypeError(f"ImageData.batch: indices must be integers; got dtype {idx.dtype}")
        idx = idx.reshape(-1).to(device=self.images.device, dtype=torch.int64)
        n = len(self)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise IndexError(
                f"ImageData.batch: indices must lie in [0, {n}); got values in [{int(idx.min())}, {int(idx.max())}]"
            )
        c = self.images.shape[1]
        device = self.images.device
        mean = torch.tensor(self.mean, dtype=torch.float32, device=device).view(1, c, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=device).view(1, c, 1, 1)
        x = (self.images.index_select(0, idx).to(torch.float32) / 255.0 - mean) / std
        return x, self.labels.index_select(0, idx)

    def fingerprint(self) -> str:
        """SHA-256 hex digest identifying the content: name, shapes, num_classes, mean, std, pixels, labels.

        ``source`` is left out (paths differ between machines). The digest is the same in every
        process and on every machine for the same content.
        """
        header = json.dumps(
            {
                "name": self.name,
                "images_shape": list(self.images.shape),
                "labels_shape": list(self.labels.shape),
                "num_classes": self.num_classes,
                # float.hex is exact, so no rounding can make two different statistics collide.
                "mean": [float(m).hex() for m in self.mean],
                "std": [float(s).hex() for s in self.std],
            },
            sort_keys=True,
        )
        digest = hashlib.sha256()
        digest.update(header.encode("utf-8"))
        digest.update(self.images.detach().cpu().contiguous().numpy().tobytes())
        digest.update(self.labels.detach().cpu().contiguous().numpy().astype("<i8").tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (
            f"ImageData(name={self.name!r}, n={len(self)}, shape=({c}, {h}, {w}), "
            f"num_classes={self.num_classes}, source={self.source!r})"
        )


def _floats(name: str, field: str, values: object) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as err:
        raise ValueError(f"ImageData {name!r}: {field} must be a sequence of floats; got {values!r}") from err


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
