"""`python -m bench site`: a static site from every leaderboard folder (plain files, no server).

Layout of the output folder (stable names: a board's id is its path below the root with '/' -> '-'):
index.html, add-a-method.html, site.css, site.js; per board <id>/index.html (headline, caveats, tables),
<id>/compare.html (two methods on shared errors), its files (CSV, JSON, Markdown, figures, per-instance CSV)
under <id>/files/, and one drill-down page per error under <id>/errors/<test_index>.html (images inline as
small PNGs); per folder of other tables (a study, a meta-evaluation) <folder id>/index.html beside its files.
The default output, <root>/site, is git-ignored: the site is built (CI does), never committed.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import time
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from bench.board import TABLES, BoardError, read_as_text, read_json
from bench.boardcheck import check_board
from bench.site import html
from bench.site.caveats import split_flags
from bench.site.compare import compare_page
from bench.site.errors import error_pages
from bench.site.howto import howto_page
from bench.site.index import SEEDS_NOTE, index_page
from bench.site.pages import board_page
from bench.site.study import folder_kind, meta_page, study_page, tables_page

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
    found = {p.parent for t in TABLES for p in root.rglob(t.csv().name)}
    return sorted(f for f in found if not _in_a_site(f / "x", root, out))


def _rel(folder: Path, root: Path) -> str:
    """A board's title: its path below the root (its folder name when it is the root)."""
    return folder.resolve().relative_to(root.resolve()).as_posix() if folder.resolve() != root.resolve() else folder.name


def load_board(folder: Path, root: Path) -> dict:
    """Everything the pages need from one board folder.

    Args:
        folder: the board folder.
        root: the leaderboards root (the board's id is its path below it).

    Returns:
        A dict: id, title, dataset, model, parts (stem -> csv, prov, md, inst), files, facts.
    """
    check_board(folder)  # a board whose files do not match its provenance is named, not published
    rel = _rel(folder, root)
    parts = {}
    for t in TABLES:
        if not t.csv(folder).exists():
            continue
        prov, md, npz, inst = t.json(folder), t.md(folder), t.artifacts(folder), None
        if t.instances(folder).exists() and npz.exists():
            try:
                with np.load(npz, allow_pickle=False) as z:
                    inst = (read_as_text(t.instances(folder)), {k: z[k] for k in z.files})
            except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
                raise BoardError(f"{npz}: an array cannot be read ({type(e).__name__}: {str(e)[:80]}); restore the "
                                 "board's files from where they came from") from None
        text, flags, source = split_flags(md.read_text() if md.exists() else None)
        parts[t.stem] = dict(csv=read_as_text(t.csv(folder)), inst=inst, flags=flags, flags_source=source,
                             flags_found=bool(text is not None and md.exists() and text != md.read_text()),
                             prov=read_json(prov) if prov.exists() else None, md=text)
    first = next((p["prov"] for p in parts.values() if p["prov"]), {}) or {}
    pieces = rel.split("/")
    limited = (first.get("errors") or {}).get("limited")
    source = next((p["flags_source"] for p in parts.values() if p["flags_source"]), "")
    flags_id = posixpath.normpath(posixpath.join(rel, posixpath.dirname(source))).replace("/", "-") if source else ""
    return dict(folder=folder, flags_id=flags_id, id=rel.replace("/", "-"), title=rel, parts=parts,
                dataset=pieces[0] if len(pieces) >= 2 else "", model=pieces[1] if len(pieces) >= 2 else "",
                files=sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".json", ".md", ".png")),
                n_errors=(first.get("errors") or {}).get("n", ""), rows=(first.get("errors") or {}).get("rows", "errors"),
                accuracy=(first.get("model") or {}).get("test_accuracy", ""),
                created=first.get("created", ""), drill=any(p["inst"] for p in parts.values()),
                note="; ".join(filter(None, [NOTES.get(rel, ""), "NOT FOR PUBLICATION (--limit)" if limited else ""])))


def find_extras(root: Path, out: Path, boards: list[Path]) -> list[Path]:
    """CSV tables under `root` that belong to no board (a model zoo, a meta-evaluation), if any exist."""
    skip = {b.resolve() for b in boards}
    return sorted(p for p in root.rglob("*.csv") if p.parent.resolve() not in skip and not _in_a_site(p, root, out))


def _stamp(root: Path) -> dict:
    """Build date (UTC), bench's version and the git commit of the boards' checkout, for every page's footer."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("bench-xai")
    except PackageNotFoundError:
        v = "unknown"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=root,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        if commit != "unknown" and dirty:
            commit += " (with uncommitted changes to the boards)"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), version=v, commit=commit)


def _extra_pages(root: Path, out: Path, tmp: Path, folders: list[Path], boards: list[dict]) -> list[dict]:
    """One page per folder of non-board tables (a study, a meta-evaluation, other CSVs) at <folder id>/index.html."""
    groups: dict[Path, list[Path]] = {}
    for path in find_extras(root, out, folders):
        groups.setdefault(path.parent, []).append(path)
    board_ids = {b["title"]: b["id"] for b in boards}
    extras = []
    for folder, csvs in sorted(groups.items()):
        rel = folder.resolve().relative_to(root.resolve()).as_posix() if folder.resolve() != root.resolve() else ""
        fid = rel.replace("/", "-") or "tables"
        while fid in board_ids.values():
            fid += "-tables"
        dest = tmp / fid
        dest.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            if f.is_file() and f.suffix in (".csv", ".json", ".md", ".png"):
                shutil.copy2(f, dest / f.name)
        kind = folder_kind(folder)
        if kind == "study":
            text = study_page(folder, rel, board_ids, 1)
        elif kind == "meta":
            seeds = [b for b in boards if b["title"].startswith(f"{rel}/")]
            anchors = ", ".join('<a href="../{id}/index.html">{title}</a>'.format(**b) for b in seeds)
            links = f"<p>Seed boards: {anchors}: {SEEDS_NOTE}.</p>" if seeds else ""
            text = meta_page(folder, rel, 1, links)
        else:
            text = tables_page(folder, rel, 1, csvs)
        (dest / "index.html").write_text(text)
        extras.append(dict(title=rel or "tables", kind=kind, id=fid, href=f"{fid}/index.html"))
    return extras


def _size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def build_site(root: str | Path = "leaderboards", out: str | Path | None = None) -> dict:
    """Build the static site from every board folder under `root`.

    Args:
        root: the leaderboards folder.
        out: output folder (default <root>/site); replaced when it holds an earlier build.

    Returns:
        A summary: out, boards, boards with drill-down, error pages, extra_tables (pages of non-board
        folders: studies, meta-evaluations, other CSVs), files, bytes, seconds.
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
        html.STAMP.update(_stamp(root))
        folders = find_boards(root, out)
        extras = _extra_pages(root, out, tmp, folders, [dict(title=t, id=t.replace("/", "-"))
                                                        for t in (_rel(f, root) for f in folders)])
        extra_ids = {e["id"] for e in extras}
        boards, n_errors = [], 0
        for folder in folders:
            board = load_board(folder, root)
            boards.append(board)
            dest = tmp / board["id"]
            (dest / "files").mkdir(parents=True)
            for name in board["files"]:
                shutil.copy2(folder / name, dest / "files" / name)
            board["flags_href"] = f"../{board['flags_id']}/index.html" if board["flags_id"] in extra_ids else ""
            parent = posixpath.dirname(board["title"]).replace("/", "-")
            board["parent"] = (posixpath.dirname(board["title"]), f"../{parent}/index.html") if parent in extra_ids else None
            board["compare"] = compare_page(board, dest)
            gallery = error_pages(board, dest)
            n_errors += len(gallery)
            (dest / "index.html").write_text(board_page(board, gallery))
            for p in board["parts"].values():
                p["inst"] = None  # the arrays are written out: free them before the next board
        (tmp / "add-a-method.html").write_text(howto_page())
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
