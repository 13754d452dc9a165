"""Where a run's or a study's tables go: runs/ (git-ignored) or, with --publish, leaderboards/.

A run writes under its own folder, `runs/<dataset>/<model>/<UTC time>/`, so it never touches a
published table; `--publish` writes `leaderboards/<dataset>/<model>/` instead. A study writes
`<runs or leaderboards>/<dataset>/<study>/[<UTC time>/]<label>-seed<k>/`. A run's folder is
claimed with an exclusive mkdir (two runs started in the same second take `<time>` and
`<time>-1`) and holds an INCOMPLETE marker until its run finishes.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench import checkpoints

RUNS = "runs"
INCOMPLETE = "INCOMPLETE"  # in a run folder while its run has not finished (removed when it does)
NAME_MAX = 255  # bytes per path component on the file systems bench runs on


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


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
    base = Path(cfg.out or RUNS) / cfg.dataset / label / _stamp()
    return claim([base])[0] if create else base


def claim(bases: list[Path]) -> list[Path]:
    """Make every folder of `bases` (or each `<name>-1`, `<name>-2`, ... if one is taken) with exclusive mkdirs.

    The same suffix for all of them (a study's folders, one per dataset, share their time);
    each is marked INCOMPLETE.
    """
    for n in range(10_000):
        folders = [b if n == 0 else b.with_name(f"{b.name}-{n}") for b in bases]
        made = []
        for f in folders:
            f.parent.mkdir(parents=True, exist_ok=True)
            try:
                f.mkdir()
            except FileExistsError:
                for m in made:
                    (m / INCOMPLETE).unlink(missing_ok=True)
                    m.rmdir()
                break
            made.append(f)
            mark_incomplete(f)
        else:
            return folders
    raise RuntimeError(f"no free run folder beside {bases[0]}")


def mark_incomplete(folder: Path) -> None:
    """Write the INCOMPLETE marker into `folder` (removed by `mark_complete`)."""
    import os

    (Path(folder) / INCOMPLETE).write_text(
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
    extra = [str(v) for k, v in sorted(cfg.model_params.items()) if k in ("arch", "attn_layer", "placement")]
    return "-".join([cfg.model, *extra])


def board_label(cfg) -> str:
    """A plain run's board folder under its dataset: the model label, plus `/<rows>` unless it explains errors."""
    return model_label(cfg) + ("" if cfg.rows == "errors" else f"/{cfg.rows}")


def study_roots(cfg, datasets: list[str], create: bool = False) -> dict[str, Path]:
    """dataset -> the study's folder for it.

    Runs: `<out or runs>/<dataset>/<study>/<UTC time>/`; with --publish:
    `<out or leaderboards>/<dataset>/<study>/`. Each cell writes to `<that>/<label>-seed<k>/`.
    With `create`, a run's folders are claimed now (see `claim`).
    """
    from bench.study.cells import study_name

    name = study_name(cfg)
    if cfg.publish:
        return {d: Path(cfg.out or leaderboards_root()) / d / name for d in datasets}
    bases = [Path(cfg.out or RUNS) / d / name / _stamp() for d in datasets]
    return dict(zip(datasets, claim(bases) if create else bases))
