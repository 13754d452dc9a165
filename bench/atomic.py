"""Atomic file replacement: write a unique temporary beside the target, then rename it into place.

A reader (or a run killed mid-write) sees the old file or the new one, never half of one, and
two writers never share a temporary. JSON is written strict (`write_json`, `dumps`): NaN and
infinities become null, with their count kept, so any JSON parser reads it.
"""

from __future__ import annotations

import json
import math
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


def strict(obj, counter: list | None = None):
    """`obj` with every NaN and infinity (float, numpy or torch scalar) replaced by None, for strict JSON.

    `counter`, when given, gets one item appended per value replaced.
    """
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if counter is not None:
            counter.append(obj)
        return None
    if isinstance(obj, dict):
        return {k: strict(v, counter) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v, counter) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy / torch scalars
        return strict(obj.item(), counter)
    return obj


def dumps(obj, **kw) -> str:
    """JSON text any strict parser reads: NaN and infinities written as null (json.dumps writes `NaN`).

    When values were replaced and `obj` is a dict, their count is kept under "non_finite_as_null".
    """
    counter: list = []
    clean = strict(obj, counter)
    if counter and isinstance(clean, dict):
        clean = {**clean, "non_finite_as_null": len(counter)}
    kw.setdefault("default", str)
    return json.dumps(clean, allow_nan=False, **kw)


def write_json(path: Path, obj, **kw) -> Path:
    """Write `obj` as strict JSON (see `dumps`, indent 2 and sorted keys by default) atomically."""
    kw.setdefault("indent", 2)
    kw.setdefault("sort_keys", True)
    return write_text(path, dumps(obj, **kw) + "\n")
