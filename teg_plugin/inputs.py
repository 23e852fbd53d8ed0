"""The fixed inputs a scorer feeds every architecture: batches for T and G, crops for E.

They are drawn once per scorer from the data pool and the config's seed, so every architecture scored
by one scorer sees exactly the same inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from teg_plugin.config import TEGConfig
from teg_plugin.data import ImageData
from teg_plugin.indicators.init import stable_seed
from teg_plugin.indicators.ntk import centred_one_hot

#: Bump when the definition of any indicator changes, so old cached scores are not reused.
PROTOCOL_VERSION = 1


@dataclass(frozen=True)
class RepeatInputs:
    """Inputs of one repeat.

    Args:
        train_x, train_y: the training batch (T, and the training side of G).
        val_x, val_y: the held-out batch (G), disjoint from the training batch.
        y_train, y_val: centred one-hot targets for kernel regression (float64).
        region_batches: the crops fed to the thin network for E, one tensor per batch.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    y_train: torch.Tensor
    y_val: torch.Tensor
    region_batches: tuple[torch.Tensor, ...]

    def to(self, device: torch.device) -> RepeatInputs:
        return RepeatInputs(
            train_x=self.train_x.to(device),
            train_y=self.train_y.to(device),
            val_x=self.val_x.to(device),
            val_y=self.val_y.to(device),
            y_train=self.y_train.to(device),
            y_val=self.y_val.to(device),
            region_batches=tuple(b.to(device) for b in self.region_batches),
        )


@dataclass(frozen=True)
class ScoringInputs:
    """All repeats' inputs, and what identifies them for the score cache."""

    repeats: tuple[RepeatInputs, ...]
    num_classes: int
    in_channels: int
    fingerprint: str

    @classmethod
    def draw(cls, data: ImageData, config: TEGConfig) -> ScoringInputs:
        """Draw every repeat's inputs from ``data`` with ``config.seed``.

        Raises:
            ValueError: if the pool is too small for two disjoint batches.
        """
        needed = 2 * config.batch_size
        if len(data) < needed:
            raise ValueError(
                f"the {data.name} pool has {len(data)} images; a training and a held-out batch of "
                f"{config.batch_size} need {needed} (lower --batch-size or use more data)"
            )
        _, height, width = data.image_shape
        if height < config.regions_crop or width < config.regions_crop:
            raise ValueError(f"images of {height}x{width} are smaller than the {config.regions_crop}-pixel crops for E")
        repeats = tuple(_draw_repeat(data, config, r) for r in range(config.repeat))
        digest = hashlib.sha256(
            f"v{PROTOCOL_VERSION}|{data.fingerprint()}|{config.fingerprint()}".encode()
        ).hexdigest()[:16]
        return cls(repeats, data.num_classes, data.image_shape[0], digest)


def _draw_repeat(data: ImageData, config: TEGConfig, repeat: int) -> RepeatInputs:
    gen = torch.Generator().manual_seed(stable_seed(config.seed, "inputs", repeat))
    order = torch.randperm(len(data), generator=gen)
    train_x, train_y = data.batch(order[: config.batch_size])
    val_x, val_y = data.batch(order[config.batch_size : 2 * config.batch_size])
    return RepeatInputs(
        train_x,
        train_y,
        val_x,
        val_y,
        centred_one_hot(train_y, data.num_classes),
        centred_one_hot(val_y, data.num_classes),
        tuple(_draw_crops(data, config, gen) for _ in range(config.regions_batches)),
    )


def _draw_crops(data: ImageData, config: TEGConfig, gen: torch.Generator) -> torch.Tensor:
    """``regions_batch_size`` random crops, each of ``regions_width`` random channels of a random image."""
    n, crop = config.regions_batch_size, config.regions_crop
    channels, height, width = data.image_shape
    images = torch.randint(len(data), (n,), generator=gen)
    picked = torch.randint(channels, (n, config.regions_width), generator=gen)
    top = torch.randint(height - crop + 1, (n,), generator=gen)
    left = torch.randint(width - crop + 1, (n,), generator=gen)
    pixels, _ = data.batch(images)
    rows = torch.arange(crop)
    ys = (top[:, None] + rows)[:, None, :, None]
    xs = (left[:, None] + rows)[:, None, None, :]
    samples = torch.arange(n)[:, None, None, None]
    return pixels[samples, picked[:, :, None, None], ys, xs].contiguous()
