"""Where a run's tables go, and what publishing a board adds (pinned weights, error manifest).

A run writes under its own folder, `runs/<dataset>/<model>/<UTC time>/` (git-ignored), so it
never touches a published table. `--publish` writes `leaderboards/<dataset>/<model>/` instead,
refuses `--limit` runs and runs from a checkout with uncommitted code (unless `--force`), and
pins every checkpoint the tables came from (the classifier, the plausibility autoencoders and
the second classifier) under `leaderboards/weights/` with its sha256 in `SHA256SUMS`. Every
run folder, published or not, gets `errors.csv`: the error manifest (test index, true label,
predicted label) whose hash the provenance records.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from bench import atomic, checkpoints

log = logging.getLogger("bench")
RUNS = "runs"


def leaderboards_root() -> Path:
    """The checkout's `leaderboards/` folder (the parent of the reference weights)."""
    return checkpoints.reference_dir().parent


INCOMPLETE = "INCOMPLETE"  # in a run folder while its run has not finished (removed when it does)
NAME_MAX = 255  # bytes per path component on the file systems bench runs on


def out_dir(cfg, label: str, create: bool = True) -> Path:
    """The folder a run writes its tables to (see the module docstring), created now.

    A run folder is made with an exclusive mkdir: when two runs start in the same second the
    second one's mkdir fails and it takes the next name (`<time>-1`, ...), so no two runs ever
    share a folder. The folder holds an `INCOMPLETE` marker until `mark_complete`.
    """
    if cfg.publish:
        folder = Path(cfg.out or leaderboards_root()) / cfg.dataset / label
        if create:
            folder.mkdir(parents=True, exist_ok=True)
            mark_incomplete(folder)
        return folder
    base = Path(cfg.out or RUNS) / cfg.dataset / label / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return claim(base) if create else base


def claim(base: Path) -> Path:
    """Make `base` (or `base-1`, `base-2`, ... if taken) with an exclusive mkdir, marked incomplete."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(10_000):
        folder = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        mark_incomplete(folder)
        return folder
    raise RuntimeError(f"no free run folder beside {base}")


def mark_incomplete(folder: Path) -> None:
    """Write the INCOMPLETE marker into `folder` (removed by `mark_complete`)."""
    import os

    (folder / INCOMPLETE).write_text(
        f"This run has not finished (started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, process "
        f"{os.getpid()}). If no run is going on, it was killed or failed: its tables here may be missing or "
        "partial. Run the same command again: it finishes only the missing work (kept in the run store).\n")


def mark_complete(folder: Path) -> None:
    """The run writing `folder` finished: remove its INCOMPLETE marker."""
    (Path(folder) / INCOMPLETE).unlink(missing_ok=True)


def discard_if_empty(folder: Path, keep: Path | None = None) -> None:
    """Remove a run folder that holds nothing but its marker (a run refused before writing anything), and
    the parents left empty by it, up to `keep` (the user's --out, kept) or the default runs/ root (removed)."""
    folder = Path(folder)
    try:
        if not (folder.is_dir() and {p.name for p in folder.iterdir()} <= {INCOMPLETE}):
            return
        (folder / INCOMPLETE).unlink(missing_ok=True)
        folder.rmdir()
        for parent in folder.parents:
            if (keep is not None and parent.resolve() == Path(keep).expanduser().resolve()) or any(parent.iterdir()):
                break
            parent.rmdir()
            if keep is None and parent.name == RUNS:
                break
    except OSError:
        pass


def check_out(cfg, label: str) -> None:
    """The output folder can be made: no existing file in its way, no name too long. Before any work."""
    from bench.contract.params import ConfigError

    root = Path(cfg.out or (leaderboards_root() if cfg.publish else RUNS)).expanduser()
    target = out_dir(cfg, label, create=False)
    shown = str(cfg.out or root)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    long = next((part for part in target.parts if len(part.encode()) > NAME_MAX), None)
    if long is not None:
        raise ConfigError(f"--out {shown}: the folder name {long[:40]}... is {len(long.encode())} bytes "
                          f"long (at most {NAME_MAX}); choose a shorter --out")
    if len(str(target.resolve()).encode()) > 4000:
        raise ConfigError(f"--out {shown}: the path is over 4,000 bytes long; choose a shorter --out")
    existing = None
    for p in [*reversed(target.parents), target]:
        if p.exists() and not p.is_dir():
            raise ConfigError(f"--out {shown}: {p} is a file, not a folder; choose another --out")
        if not p.exists():
            break
        existing = p
    import os

    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {shown}: cannot write in {existing} (permission denied); choose "
                          "another --out")


def model_label(cfg) -> str:
    """Folder name of a model: its registry name plus distinguishing params (e.g. cbam)."""
    extra = [str(v) for k, v in sorted(cfg.model_params.items()) if k in ("arch", "attn_layer")]
    return "-".join([cfg.model, *extra])


def refuse_unpublishable(cfg) -> None:
    """A --publish run that would publish what it should not: one-line error before any work."""
    if not cfg.publish:
        return
    if cfg.limit is not None:
        raise ValueError("--publish refuses --limit runs (a published board covers the whole error set)")
    from bench.provenance import git_state

    if git_state().get("dirty") and not cfg.force:
        raise ValueError("--publish refuses a checkout with uncommitted code changes (commit first, "
                         "or pass --force and own it)")


def write_manifest(errors, folder: Path) -> Path:
    """errors.csv: position, test_index, true, pred of every error the tables explain."""
    lines = ["position,test_index,true,pred"] + [
        f"{i},{r['test_index']},{r['true']},{r['pred']}" for i, r in enumerate(errors.manifest())]
    return atomic.write_text(folder / "errors.csv", "\n".join(lines) + "\n")


def used_checkpoints(prep) -> list[dict]:
    """Metadata of every trained resource this run loaded (model first), each with relpath and source."""
    metas = [prep.model_meta]
    for value in prep.metric_ctx.memo.values():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict) and "relpath" in value[1]:
            metas.append(value[1])
    return [m for m in metas if "relpath" in m]


def pin_weights(metas: list[dict]) -> list[Path]:
    """Copy each checkpoint not yet pinned into the reference weights and record its sha256."""
    root = checkpoints.reference_dir()
    pins = checkpoints.pinned(root)
    written = []
    for m in metas:
        rel, src = m["relpath"], Path(m["checkpoint"])
        if m.get("source") == "reference":
            continue
        dest = root / rel
        if rel in pins:
            log.warning("replacing reference weights %s (boards made with the old ones must be republished)", dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".pt", ".json"):
            shutil.copyfile(src.with_suffix(suffix), dest.with_suffix(suffix))
        pins[rel] = checkpoints.file_sha256(dest)
        written += [dest, dest.with_suffix(".json")]
        log.info("pinned reference weights %s (sha256 %s)", dest, pins[rel][:12])
    if written:
        atomic.write_text(root / checkpoints.SUMS, "".join(f"{d}  {r}\n" for r, d in sorted(pins.items())))
    return written
