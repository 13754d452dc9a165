"""IDX files (the original MNIST format, also Fashion-MNIST): read, locate, download.

Format: http://yann.lecun.com/exdb/mnist/ (big-endian header: 0, 0, type 0x08, ndim; dims).
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


FIX = "replace it with the dataset's original IDX file"


def read_idx(path: str | Path, ndim_expected: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or .gz) of unsigned bytes into a numpy array.

    A file that is not one (wrong magic, another number of dimensions than `ndim_expected`, a
    body shorter or longer than its header says, a damaged gzip stream) is a ValueError naming it.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: cannot be read ({type(e).__name__}: {e}); {FIX}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file; {FIX}")
    ndim = data[3]
    if ndim_expected is not None and ndim != ndim_expected:
        raise ValueError(f"{path}: its IDX header says {ndim} dimensions, an MNIST-style "
                         f"{'image' if ndim_expected == 3 else 'label'} file has {ndim_expected}; {FIX}")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the IDX header is cut short ({len(data)} bytes); {FIX}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: its header says {dims} but it holds {body.size} bytes; {FIX}")
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


MIN_TRAIN = 50_001  # the first 50,000 training images train, the rest validate (bench.data.splits)


def load_idx_dir(directory: str | Path, pinned: dict[str, str] | None = None, n_classes: int = 10):
    """(train_images, train_labels, test_images, test_labels) from an IDX directory.

    With `pinned` (key -> sha256 of decompressed bytes), every file is verified. Each file is
    checked: images (N, 28, 28), labels (N,) in 0..n_classes-1, as many labels as images, more
    than 50,000 training images (the fixed train/validation split) and at least one test image;
    a failure is one ValueError naming the file and what to do.
    """
    files = find_idx(directory)
    if pinned:
        from bench.data.safe_pickle import ChecksumError

        for key, path in files.items():
            got = content_sha256(path)
            if got != pinned[key]:
                raise ChecksumError(f"{path}: content sha256 {got[:16]}... does not match the pinned {pinned[key][:16]}...")
    arrays = {k: read_idx(files[k], 3 if k.endswith("images") else 1) for k in FILES}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        ipath, lpath = files[f"{part}_images"], files[f"{part}_labels"]
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{ipath}: images are {images.shape[1]}x{images.shape[2]}, bench needs 28x28 "
                             "(MNIST format); resize them to 28x28 or use the original files")
        if len(images) != len(labels):
            raise ValueError(f"{ipath} holds {len(images)} images but {lpath} holds {len(labels)} labels; "
                             "give both files of the same set")
        if len(labels) and int(labels.max()) >= n_classes:
            bad = int(np.argmax(labels >= n_classes))
            raise ValueError(f"{lpath}: label {int(labels[bad])} at position {bad} is outside 0-{n_classes - 1} "
                             f"(this dataset has {n_classes} classes); {FIX}")
    n_train, n_test = len(arrays["train_labels"]), len(arrays["test_labels"])
    if n_train < MIN_TRAIN:
        raise ValueError(f"{files['train_images']}: {n_train} training images; bench trains on the first 50,000 "
                         f"and validates on the rest, so it needs at least {MIN_TRAIN:,} (MNIST has 60,000)")
    if n_test < 1:
        raise ValueError(f"{files['test_images']}: no test images; give a test set of at least one image")
    return tuple(arrays[k] for k in FILES)


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
