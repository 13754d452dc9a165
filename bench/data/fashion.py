"""Fashion-MNIST (Xiao et al. 2017, https://arxiv.org/abs/1708.07747): IDX files.

Default source: Debian's `dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist),
verified against pinned sha256 sums of the decompressed files; or a user's IDX directory;
or `data_dir="download[:root]"` to fetch with torchvision. 60k training images are split
50k train / 10k validation (first / last), plus the 10k test set.
"""

from __future__ import annotations

from pathlib import Path

from bench.data import DATASETS
from bench.data.splits import Dataset, split_train_val, to_split

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
PINNED = {
    "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@DATASETS.register()
def load_fashion_mnist(data_dir: str | None = None) -> Dataset:
    """Fashion-MNIST from `data_dir`, or Debian's files (apt-get install dataset-fashion-mnist)."""
    from bench.data.idx import download_with_torchvision, load_idx_dir

    pinned = None
    if data_dir is None:
        if not DEBIAN_DIR.exists():
            raise FileNotFoundError(
                f"{DEBIAN_DIR} not found: apt-get install dataset-fashion-mnist, "
                "or set data_dir to an IDX directory or 'download'")
        data_dir, pinned = str(DEBIAN_DIR), PINNED
    elif data_dir == "download" or data_dir.startswith("download:"):
        root = data_dir.partition(":")[2] or "~/.cache/bench/data"
        data_dir = str(download_with_torchvision("FashionMNIST", root))
    xtr, ytr, xte, yte = load_idx_dir(data_dir, pinned, n_classes=len(CLASSES))
    train, val = split_train_val(xtr, ytr)
    return Dataset("fashion-mnist", train, val, to_split(xte, yte), CLASSES, str(data_dir))
