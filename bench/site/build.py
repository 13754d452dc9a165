"""`python -m bench site`: a static site from every leaderboard folder (plain files, no server).

Layout of the output folder: index.html, site.css, site.js; per board <id>/index.html, its
files (CSV, JSON, Markdown, figures, per-instance CSV) under <id>/files/, and one drill-down
page per error under <id>/errors/<test_index>.html (images inline as small PNGs).
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from bench.boardcheck import BoardError, check_board
from bench.site.errors import STEMS, error_pages
from bench.site.pages import board_page, extra_page, index_page
from bench.site.tables import read_csv_text

MARKER = ".bench-site"  # marks a folder this command wrote, so a rebuild may replace it
NOTES = {"ci": "regression baselines of bench check (not a leaderboard)"}


def _in_a_site(path: Path, root: Path, out: Path) -> bool:
    """Is `path` inside `out`, inside any folder an earlier build wrote, or in a hidden folder under `root`?"""
    path, root = path.resolve(), root.resolve()
    parents = [p for p in path.parents if p == root or root in p.parents]
    return out.resolve() in (path, *path.parents) or any(
        (p / MARKER).exists() or (p != root and p.name.startswith(".")) for p in parents)


def find_boards(root: Path, out: Path) -> list[Path]:
    """Folders under `root` holding a counterfactuals.csv or attributions.csv (built sites excluded)."""
    found = {p.parent for s in STEMS for p in root.rglob(f"{s}.csv")}
    return sorted(f for f in found if not _in_a_site(f / "x", root, out))


def load_board(folder: Path, root: Path) -> dict:
    """Everything the pages need from one board folder.

    Args:
        folder: the board folder.
        root: the leaderboards root (the board's id is its path below it).

    Returns:
        A dict: id, title, dataset, model, parts (stem -> csv, prov, md, inst), files, facts.
    """
    check_board(folder)  # a board whose files do not match its provenance is named, not published
    rel = folder.resolve().relative_to(root.resolve()).as_posix() if folder.resolve() != root.resolve() else folder.name
    parts = {}
    for s in STEMS:
        if not (folder / f"{s}.csv").exists():
            continue
        prov, md, inst = folder / f"{s}.json", folder / f"{s}.md", None
        if (folder / f"{s}_instances.csv").exists() and (folder / f"{s}_artifacts.npz").exists():
            npz = folder / f"{s}_artifacts.npz"
            try:
                with np.load(npz, allow_pickle=False) as z:
                    inst = (read_csv_text(folder / f"{s}_instances.csv"), {k: z[k] for k in z.files})
            except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
                raise BoardError(f"{npz}: an array cannot be read ({type(e).__name__}: {str(e)[:80]}); restore the "
                                 "board's files from where they came from") from None
        parts[s] = dict(csv=read_csv_text(folder / f"{s}.csv"), inst=inst,
                        prov=json.loads(prov.read_text()) if prov.exists() else None,
                        md=md.read_text() if md.exists() else None)
    first = next((p["prov"] for p in parts.values() if p["prov"]), {}) or {}
    pieces = rel.split("/")
    limited = (first.get("errors") or {}).get("limited")
    return dict(folder=folder, id=rel.replace("/", "-"), title=rel, parts=parts,
                dataset=pieces[0] if len(pieces) >= 2 else "", model=pieces[1] if len(pieces) >= 2 else "",
                files=sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".json", ".md", ".png")),
                n_errors=(first.get("errors") or {}).get("n", ""), accuracy=(first.get("model") or {}).get("test_accuracy", ""),
                created=first.get("created", ""), drill=any(p["inst"] for p in parts.values()),
                note="; ".join(filter(None, [NOTES.get(rel, ""), "NOT FOR PUBLICATION (--limit)" if limited else ""])))


def find_extras(root: Path, out: Path, boards: list[Path]) -> list[Path]:
    """CSV tables under `root` that belong to no board (a model zoo, a meta-evaluation), if any exist."""
    skip = {b.resolve() for b in boards}
    return sorted(p for p in root.rglob("*.csv") if p.parent.resolve() not in skip and not _in_a_site(p, root, out))


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def build_site(root: str | Path = "leaderboards", out: str | Path | None = None) -> dict:
    """Build the static site from every board folder under `root`.

    Args:
        root: the leaderboards folder.
        out: output folder (default <root>/site); replaced when it holds an earlier build.

    Returns:
        A summary: out, boards, boards with drill-down, error pages, files, bytes, seconds.
    """
    t0 = time.perf_counter()
    root = Path(root)
    out = Path(out) if out else root / "site"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such leaderboards folder")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"{out} exists and was not written by `bench site`; choose another --out")
    tmp = out.with_name(f".{out.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / MARKER).write_text("written by `python -m bench site`; rebuilt from scratch on every build\n")
        for name in ("site.css", "site.js"):
            (tmp / name).write_bytes(resources.files("bench.site").joinpath("static", name).read_bytes())
        folders = find_boards(root, out)
        boards, n_errors = [], 0
        for folder in folders:
            board = load_board(folder, root)
            dest = tmp / board["id"]
            (dest / "files").mkdir(parents=True)
            for name in board["files"]:
                shutil.copy2(folder / name, dest / "files" / name)
            gallery = error_pages(board, dest)
            n_errors += len(gallery)
            (dest / "index.html").write_text(board_page(board, gallery))
            boards.append(board)
        extras = []
        for i, path in enumerate(find_extras(root, out, folders)):
            rel = path.relative_to(root).as_posix()
            extra = dict(title=rel, file=path.name, href=f"tables/{i}-{path.stem}.html")
            (tmp / "tables").mkdir(exist_ok=True)
            shutil.copy2(path, tmp / "tables" / path.name)
            (tmp / extra["href"]).write_text(extra_page(extra, read_csv_text(path)))
            extras.append(extra)
        (tmp / "index.html").write_text(index_page(boards, extras))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed build leaves no half-built folder behind
        raise
    n_files, n_bytes = _size(out)
    return dict(out=str(out), boards=len(boards), boards_with_drilldown=sum(b["drill"] for b in boards),
                error_pages=n_errors, extra_tables=len(extras), files=n_files, bytes=n_bytes,
                seconds=round(time.perf_counter() - t0, 2))
