"""IDX files (the original MNIST format, also Fashion-MNIST): read, locate, download.

Format: http://yann.lecun.com/exdb/mnist/ (big-endian header: 0, 0, type 0x08, ndim; dims).
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or .gz) of unsigned bytes into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


def find_idx(directory: str | Path) -> dict[str, Path]:
    """The four IDX files in `directory` (each plain or .gz), or a one-line FileNotFoundError."""
    directory = Path(directory).expanduser()
    found = {}
    for key, stem in FILES.items():
        for cand in (directory / stem, directory / f"{stem}.gz", directory / stem.replace("-idx", ".idx")):
            if cand.exists():
                found[key] = cand
                break
        else:
            raise FileNotFoundError(f"{directory}: missing {stem}[.gz] (an IDX directory needs all four files)")
    return found


def content_sha256(path: Path) -> str:
    """sha256 of the decompressed bytes (gzip headers differ between repackagers)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_idx_dir(directory: str | Path, pinned: dict[str, str] | None = None):
    """(train_images, train_labels, test_images, test_labels) from an IDX directory.

    With `pinned` (key -> sha256 of decompressed bytes), every file is verified.
    """
    files = find_idx(directory)
    if pinned:
        from bench.data.safe_pickle import ChecksumError

        for key, path in files.items():
            got = content_sha256(path)
            if got != pinned[key]:
                raise ChecksumError(f"{path}: content sha256 {got[:16]}... does not match the pinned {pinned[key][:16]}...")
    return tuple(read_idx(files[k]) for k in FILES)


def download_with_torchvision(name: str, root: str | Path) -> Path:
    """Download `MNIST` or `FashionMNIST` with torchvision (needs internet); returns the raw dir."""
    try:
        from torchvision import datasets
    except ImportError as e:  # pragma: no cover - torchvision comes with timm
        raise RuntimeError("downloading needs torchvision; or pass data_dir=<IDX directory>") from e
    cls = getattr(datasets, name)
    root = Path(root).expanduser()
    try:
        cls(str(root), train=True, download=True)
        cls(str(root), train=False, download=True)
    except Exception as e:
        raise RuntimeError(f"could not download {name} ({type(e).__name__}: {e}); "
                           "pass data_dir=<IDX directory> to work offline") from None
    return root / name / "raw"
