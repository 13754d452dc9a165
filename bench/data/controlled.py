"""Controlled digit datasets built from MNIST, with a per-image ground-truth mask.

Each set is a deterministic function of MNIST (any source `load_mnist` accepts) and a fixed
seed (`SEED`, one numpy stream per set and split), built at 28x28 so every bench model takes it.
Its splits are `MaskedSplit`s: a `Split` plus `mask`, bool (N,1,28,28) like `x`, the pixels
that carry the label. Every existing consumer sees an ordinary `Split` (x, y).

- `mnist-distractor`: left half = an MNIST digit squeezed to 28x14 (each pair of adjacent
  columns averaged), right half = a uniformly random *other* digit of the same split, squeezed
  the same way. Label = the left digit's label. Mask = the whole left half (columns 0-13).
  Why it is the truth: the right half is drawn independently of the label, so the label is a
  function of the left half alone (it is the squeezed labelled digit); the half, not just its
  ink, because the label side's background is evidence too (a 1 is a 1 because of where ink is
  not). The label side's ink alone is `mask & (x > 0)`.
- `mnist-decoy` (after DecoyMNIST, Ross et al. 2017, https://arxiv.org/abs/1703.03717): an MNIST
  digit plus a 4x4 patch in a random corner (overwriting the corner; ~0.15% of MNIST images
  have ink there) whose grey level is (255 - 25*label)/255. Label = the label of a uniformly
  random *other* image of the split, so the digit and the corner are independent of it.
  Mask = the patch. Why it is the truth: the label is a function of the patch's grey level
  alone; nothing else in the image depends on the label.
- `mnist-decoy-shortcut`: DecoyMNIST's train-only shortcut. Label = the digit's own label; a
  white 4x4 patch sits in one of 10 border slots (`SLOTS`: 5 along the top edge, 5 along the
  bottom): in train and val the slot is the label's (a shortcut: the label is a function of the
  patch alone there, and of the digit too); in test the slot is a uniformly random class's, so
  only the digit carries the label. Mask = the patch in every split: where a shortcut model
  looks (it carries the label in train/val only). The shortcut is coded by position, not by
  Ross's grey level, because the default CNN ignores a grey-level shortcut: trained 300 steps on
  6k images with grey = label it scored 0.984 on test with the shortcut and 0.981 with it broken,
  i.e. it learned the digit; with the slot shortcut it scores 1.0 vs ~0.3 (tests measure it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bench.data import DATASETS, load_dataset
from bench.data.splits import Dataset, Split

SEED = 0  # every built-in controlled set is built from this seed (streams: SEED, set id, split)
VERSION = 1  # bump when a construction changes (the sets' bytes change)
PATCH = 4  # DecoyMNIST's 4x4 swatch
CORNERS = ((0, 0), (0, 28 - PATCH), (28 - PATCH, 0), (28 - PATCH, 28 - PATCH))
SLOTS = tuple((r, c) for r in (0, 28 - PATCH) for c in (0, 6, 12, 18, 24))  # the shortcut's 10 patch slots
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class MaskedSplit(Split):
    mask: torch.Tensor  # bool (N,1,28,28): the pixels that carry the label


def patch_level(labels: np.ndarray) -> np.ndarray:
    """DecoyMNIST's grey level of the patch for class k: (255 - 25k)/255 (1.0 for 0, 30/255 for 9)."""
    return ((255 - 25 * np.asarray(labels, dtype=np.int64)) / 255.0).astype(np.float32)


def other_index(rng: np.random.Generator, n: int) -> np.ndarray:
    """For each i, a uniformly random index j != i in [0, n)."""
    return (np.arange(n) + rng.integers(1, n, size=n)) % n


def squeeze(x: np.ndarray) -> np.ndarray:
    """(N,28,28) -> (N,28,14): each pair of adjacent columns averaged (area resize to half width)."""
    return x.reshape(len(x), 28, 14, 2).mean(-1, dtype=np.float32)


def distractor_split(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """(images, labels, mask): labelled digit squeezed on the left, a random other digit on the right."""
    other = other_index(rng, len(y))
    images = np.concatenate([squeeze(x), squeeze(x[other])], axis=2)
    mask = np.zeros(images.shape, dtype=bool)
    mask[:, :, :14] = True
    return images, y.copy(), mask


def stamp_patch(x: np.ndarray, levels: np.ndarray, corners: np.ndarray):
    """(images, mask): a PATCH x PATCH square of grey `levels[i]` written over corner `corners[i]`."""
    images, mask = x.copy(), np.zeros(x.shape, dtype=bool)
    for c, (r0, c0) in enumerate(CORNERS):
        sel = corners == c
        images[sel, r0:r0 + PATCH, c0:c0 + PATCH] = levels[sel, None, None]
        mask[sel, r0:r0 + PATCH, c0:c0 + PATCH] = True
    return images, mask


def decoy_split(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """(images, labels, mask): the label is another image's label, shown only by the patch's grey."""
    labels = y[other_index(rng, len(y))]
    images, mask = stamp_patch(x, patch_level(labels), rng.integers(0, len(CORNERS), size=len(y)))
    return images, labels, mask


def shortcut_split(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, shortcut: bool):
    """(images, labels, mask): the digit's own label; a white patch in the label's slot (shortcut) or a random one."""
    slot = y if shortcut else rng.integers(0, len(SLOTS), size=len(y))
    images, mask = x.copy(), np.zeros(x.shape, dtype=bool)
    for k, (r0, c0) in enumerate(SLOTS):
        sel = slot == k
        images[sel, r0:r0 + PATCH, c0:c0 + PATCH] = 1.0
        mask[sel, r0:r0 + PATCH, c0:c0 + PATCH] = True
    return images, y.copy(), mask


def masked_split(images: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> MaskedSplit:
    """Checked arrays -> a MaskedSplit (x float32 (N,1,28,28) in [0,1], y int64, mask bool like x)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).reshape(-1, 1, 28, 28)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=bool)).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    if not (len(x) == len(y) == len(m)):
        raise ValueError(f"{len(x)} images, {len(y)} labels, {len(m)} masks")
    if float(x.min()) < 0.0 or float(x.max()) > 1.0:
        raise ValueError("pixel values outside [0,1]")
    return MaskedSplit(x, y, m)


def build(name: str, base: Dataset, seed: int = SEED) -> Dataset:
    """The controlled set `name` built from the MNIST `base` with `seed` (same inputs, same bytes)."""
    set_id, make = _BUILDERS[name]
    splits = []
    for k, split_name in enumerate(SPLITS):
        split = getattr(base, split_name)
        rng = np.random.default_rng([seed, set_id, k])
        x, y = split.x[:, 0].numpy(), split.y.numpy()
        splits.append(masked_split(*make(x, y, rng, split_name)))
    return Dataset(name, *splits, base.classes, f"{base.source} -> {name} v{VERSION} seed {seed}")


_BUILDERS = {
    "mnist-distractor": (1, lambda x, y, rng, s: distractor_split(x, y, rng)),
    "mnist-decoy": (2, lambda x, y, rng, s: decoy_split(x, y, rng)),
    "mnist-decoy-shortcut": (3, lambda x, y, rng, s: shortcut_split(x, y, rng, shortcut=s != "test")),
}


def swap_region(x: torch.Tensor, mask: torch.Tensor, x_donor: torch.Tensor) -> torch.Tensor:
    """`x` with its pixels inside `mask` taken from `x_donor` (`~mask` swaps everything else)."""
    return torch.where(mask, x_donor, x)


@DATASETS.register()
def load_mnist_distractor(data_dir: str | None = None) -> Dataset:
    """MNIST-distractor: labelled digit (left) beside a random one (right), both squeezed to 28x14."""
    return build("mnist-distractor", load_dataset("mnist", data_dir))


@DATASETS.register()
def load_mnist_decoy(data_dir: str | None = None) -> Dataset:
    """MNIST-decoy: the label only in a corner patch's grey level; the digit is shuffled against it."""
    return build("mnist-decoy", load_dataset("mnist", data_dir))


@DATASETS.register()
def load_mnist_decoy_shortcut(data_dir: str | None = None) -> Dataset:
    """DecoyMNIST-style shortcut: a white patch's border slot follows the label in train/val, random in test."""
    return build("mnist-decoy-shortcut", load_dataset("mnist", data_dir))
