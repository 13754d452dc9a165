"""The Dataset and Split types, and the checks that turn arrays into a Split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # float32 (N,1,28,28) in [0,1]
    y: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    source: str  # where the bytes came from (path or URL), for provenance


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """uint8 (N,28,28) or float (N,784) in [0,1] plus labels -> a checked Split."""
    if images.dtype == np.uint8:
        x = torch.from_numpy(images.astype(np.float32) / 255.0)
    else:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    x = x.reshape(-1, 1, 28, 28)
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if float(x.min()) < 0.0 or float(x.max()) > 1.0:
        raise ValueError("pixel values outside [0,1]")
    return Split(x, y)


def split_train_val(images: np.ndarray, labels: np.ndarray, n_train: int = 50_000):
    """The fixed split used everywhere: the first 50k training images train, the rest validate."""
    return to_split(images[:n_train], labels[:n_train]), to_split(images[n_train:], labels[n_train:])

