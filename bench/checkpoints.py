"""Trained weights on disk: the shipped reference weights, the local cache, and safe file handling.

Every trained resource (the classifier, the plausibility autoencoders, the second classifier)
has a relative path such as `models/mnist/cnn-<key>.pt`, where `key` hashes everything its
training depends on. `locate` looks it up in two layers:

1. the **reference weights** shipped with the published leaderboards
   (`leaderboards/weights/<relpath>`, pinned by sha256 in `leaderboards/weights/SHA256SUMS`):
   the exact checkpoints the published tables were made from, so a run on any machine
   explains the same model and the same errors. `use_reference=False` (`--retrain`) skips them;
2. the local cache (`<cache_dir>/<relpath>`), where checkpoints trained on this machine go.

A checkpoint is a plain state dict (`torch.load(weights_only=True)`) with a JSON sidecar of
metadata. Writes go to a unique temporary file renamed into place, under a file lock, so two
runs training the same model at once neither corrupt nor duplicate it (the second waits and
loads). A truncated or foreign file, or one holding NaN or infinite weights, gives one line
naming it and what to do, never a traceback: a cached one is rebuilt (said so), a reference
one is an error (it is pinned). A training that ends in non-finite weights is never cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from filelock import FileLock

from bench import atomic

log = logging.getLogger("bench")
REFERENCE_ENV = "BENCH_REFERENCE_DIR"
SUMS = "SHA256SUMS"
LOCK_TIMEOUT_S = 3600  # a second run waits at most this long for another's training


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, truncated, foreign or does not match its pin."""


def reference_dir() -> Path:
    """Where the reference weights live: $BENCH_REFERENCE_DIR, else `leaderboards/weights` of this checkout."""
    env = os.environ.get(REFERENCE_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "leaderboards" / "weights"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pinned(root: Path | None = None) -> dict[str, str]:
    """relpath -> sha256 of every reference file listed in SHA256SUMS (empty when there is none)."""
    sums = (root or reference_dir()) / SUMS
    if not sums.exists():
        return {}
    out = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip()] = digest
    return out


def reference(relpath: str) -> Path | None:
    """The pinned reference checkpoint for `relpath`, verified, or None when none is shipped."""
    root = reference_dir()
    pins = pinned(root)
    if relpath not in pins:
        return None
    path = root / relpath
    if not path.exists() or not path.with_suffix(".json").exists():
        raise CheckpointError(f"reference weights {path} (or its .json) are missing: restore them with "
                              f"`git checkout -- {path}` or run with --retrain")
    got = file_sha256(path)
    if got != pins[relpath]:
        raise CheckpointError(f"reference weights {path} do not match their pinned sha256 "
                              f"({got[:12]} != {pins[relpath][:12]}): restore them with `git checkout -- {path}`")
    return path


def locate(relpath: str, cache_dir: str | Path, use_reference: bool = True) -> tuple[Path, str]:
    """(path, source) for `relpath`: the reference file when shipped and allowed, else the cache path.

    source is "reference" or "cache" (the cache path may not exist yet).
    """
    ref = reference(relpath) if use_reference else None
    if ref is not None:
        return ref, "reference"
    return Path(cache_dir).expanduser() / relpath, "cache"


def load(path: Path) -> tuple[dict, dict]:
    """(state dict, metadata) of a checkpoint; CheckpointError naming the file when it is unusable."""
    meta_path = path.with_suffix(".json")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {e.filename} is missing") from None
    except Exception as e:  # noqa: BLE001 - truncated zip, foreign pickle, bad JSON: one line, named
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} is not a state dict of tensors")
    bad = non_finite(state)
    if bad:
        raise CheckpointError(f"checkpoint {path} holds non-finite weights ({bad})")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {meta_path} is not a metadata record (a JSON object)")
    return state, meta


def non_finite(state: dict) -> str:
    """'' when every floating parameter and buffer is finite, else which (name and count of NaN/inf)."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            n = int((~torch.isfinite(t)).sum())
            if n:
                return f"{name}: {n} of {t.numel()} values NaN or infinite"
    return ""


def load_into(module: torch.nn.Module, path: Path) -> dict:
    """Load the checkpoint at `path` into `module` (strict); returns its metadata."""
    state, meta = load(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} does not fit the model it is keyed for "
                              f"({str(e).splitlines()[0][:120]})") from None
    return meta


def save(path: Path, module: torch.nn.Module, meta: dict) -> None:
    """Write state dict and sidecar through unique temporaries renamed into place (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    atomic.write_with(path, lambda f: torch.save(state, f))
    atomic.write_json(path.with_suffix(".json"), meta, sort_keys=False)


def lock(path: Path) -> FileLock:
    """The inter-process lock that guards training and writing the checkpoint at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)


def load_or_build(relpath: str, build_fn, train_fn, cache_dir: str | Path, use_reference: bool = True,
                  force: bool = False) -> tuple[torch.nn.Module, dict]:
    """The module at `relpath` from the reference weights or the cache, or trained now.

    Args:
        relpath: e.g. "models/mnist/cnn-<key>.pt".
        build_fn: () -> a freshly built, seeded module (called again before training, so a
            checkpoint that failed to load half-way never leaks into the training start).
        train_fn: (module) -> metadata dict; trains the module in place.
        force: train even when a cached checkpoint exists (never overwrites a reference).
    Returns:
        (module, metadata); the metadata adds `source` ("reference" | "cache" | "trained"),
        `cached` (not trained now), `checkpoint` (the file's path) and `relpath`.
    """
    path, source = locate(relpath, cache_dir, use_reference and not force)
    module = build_fn()
    if source == "reference":
        meta = load_into(module, path)
        log.info("using reference weights %s", path)
    else:
        with lock(path):  # a concurrent run training the same checkpoint finishes first; we then load it
            meta = None
            if path.exists() and not force:
                try:
                    meta = load_into(module, path)
                except CheckpointError as e:
                    log.warning("%s; training it again", e)
                    module = build_fn()
            if meta is None:
                meta, source = train_fn(module), "trained"
                bad = non_finite(module.state_dict())
                if bad:  # diverged: never cached, never explained
                    raise CheckpointError(f"training {relpath} gave non-finite weights ({bad}); nothing was "
                                          "cached: lower the learning rate (train.lr) and run again")
                save(path, module, meta)
    return module, dict(meta, source=source, cached=source != "trained", checkpoint=str(path), relpath=relpath)
