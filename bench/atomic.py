"""Atomic file replacement: write a unique temporary beside the target, then rename it into place.

A reader (or a run killed mid-write) sees the old file or the new one, never half of one, and
two writers never share a temporary.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_with(path: Path, write_fn: Callable[[BinaryIO], object]) -> Path:
    """Call `write_fn(f)` on a unique temporary in path's folder, then replace `path` with it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and checkpoints are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    return write_with(path, lambda f: f.write(data))


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())
