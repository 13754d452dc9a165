"""A restricted unpickler for the classic `mnist.pkl.gz`: numpy array reconstruction only.

A pickle can run any callable it names; this one admits exactly the three globals numpy
needs to rebuild arrays (ndarray, dtype, multiarray._reconstruct) and refuses anything else
with a one-line `UnsafePickleError`. See https://docs.python.org/3/library/pickle.html#restricting-globals
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
from pathlib import Path

ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the numpy-array allow-list."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler whose `find_class` admits only numpy array and dtype reconstruction."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(f"refusing to unpickle global {module}.{name}: only numpy arrays are allowed")
        import numpy.core.multiarray  # noqa: F401  (numpy<2 and >=2 both provide it)

        return super().find_class(module, name)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ChecksumError(ValueError):
    """A data file does not match its pinned checksum."""


def load_numpy_pickle_gz(path: str | Path, sha256: str | None = None):
    """Verify `path` against `sha256` (if given) and unpickle it allowing numpy arrays only."""
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise ChecksumError(f"{path}: sha256 {got[:16]}... does not match the pinned {sha256[:16]}...")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
