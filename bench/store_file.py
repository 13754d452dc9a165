"""What a bench run store *file* is: its schema, its marker, and what to say when it is not one.

`bench.store.Store` reads and writes records in such a file; this module only looks at files:
the exact schema and the `PRAGMA application_id` / `user_version` marker that make a SQLite
file bench's (`probe`, before any work), the one-line description of every SQLite failure
(`describe`: damaged, disk full, locked, read-only, foreign), and the run listing `bench runs`
prints (`read_runs`, read-only). Split from bench/store.py, which re-exports these names.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    entry_key TEXT PRIMARY KEY, task TEXT, method TEXT, mode TEXT, version TEXT,
    params TEXT, context TEXT, created REAL);
CREATE TABLE IF NOT EXISTS records (
    entry_key TEXT, test_index INTEGER, success INTEGER, reason TEXT,
    queries REAL, grad_queries REAL, seconds REAL, explained INTEGER, contrast INTEGER,
    artifact BLOB, created REAL, PRIMARY KEY (entry_key, test_index));
CREATE TABLE IF NOT EXISTS costs (
    entry_key TEXT, metric TEXT, version TEXT, n INTEGER, seconds REAL, created REAL);
CREATE TABLE IF NOT EXISTS scores (
    entry_key TEXT, test_index INTEGER, metric TEXT, version TEXT, value REAL,
    PRIMARY KEY (entry_key, test_index, metric, version));
CREATE TABLE IF NOT EXISTS fit_info (entry_key TEXT PRIMARY KEY, info TEXT);
CREATE TABLE IF NOT EXISTS runs (
    started REAL, finished REAL, folder TEXT, config TEXT, n_errors INTEGER, status TEXT);
"""


class StoreError(ValueError):
    """The store file is not a bench run store, is damaged, its disk is full, or another run holds it."""


TABLES = {"entries", "records", "costs", "scores"}  # what makes a file a bench store ("runs" came later)
# bench's own marker in the SQLite header: a file without it (and without bench's exact schema)
# is somebody else's database and is never written to.
APPLICATION_ID = 0x42454E43  # "BENC"
SCHEMA_VERSION = 1  # PRAGMA user_version of the current schema
SCHEMA_SQL = [stmt.strip() for stmt in SCHEMA.split(";") if stmt.strip()]
SQLITE_HEADER = b"SQLite format 3\x00"


def schema_columns() -> dict[str, list[str]]:
    """table -> its columns in the current schema (parsed from SCHEMA on an in-memory database)."""
    with closing(sqlite3.connect(":memory:")) as con:
        con.executescript(SCHEMA)
        return {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in table_names(con)}


def table_names(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)


def describe(path: Path, e: BaseException) -> StoreError:
    """One line for an SQLite (or decompression) error from the store at `path`: what happened, what to do."""
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, sqlite3.OperationalError) and ("full" in text or "disk I/O" in text):
        return StoreError(f"the disk holding the run store {path} is full or failing (SQLite: {text}); every "
                          "finished batch is kept in the store: free some space and run the same command again")
    if isinstance(e, sqlite3.OperationalError) and "locked" in text:
        return StoreError(f"the run store {path} stayed locked by another process for 60 s (SQLite: {text}); "
                          "wait for it, or give this run its own --cache-dir or --store")
    if isinstance(e, sqlite3.OperationalError) and ("readonly" in text or "read-only" in text
                                                    or "unable to open" in text):
        return StoreError(f"the run store {path} cannot be written (SQLite: {text}); check the file's and its "
                          "folder's permissions, or point --cache-dir or --store elsewhere")
    return StoreError(f"the run store {path} is damaged (SQLite: {text}); its results cannot be read: copy it "
                      "away to inspect it and point --cache-dir or --store at a new path (a new store is created)")


def inspect_file(path: Path) -> str:
    """What the file at `path` is: "empty", "bench", "legacy" (bench's schema without the marker). Any
    other file raises StoreError naming it; nothing is written."""
    if path.stat().st_size == 0:
        return "empty"
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise StoreError(f"{path} is not a usable bench run store (file is not a database); it is left as it "
                         "is: point --cache-dir or --store elsewhere")
    try:
        with closing(_read_only(path)) as con:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            tables = table_names(con)
            cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in tables}
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a usable bench run store ({str(e).splitlines()[0]}); it is left as it "
                         "is: point --cache-dir or --store elsewhere") from None
    want = schema_columns()
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} is a bench run store of a newer schema (version {version}; this bench reads "
                             f"{SCHEMA_VERSION}): update bench, or point --cache-dir or --store elsewhere")
        if version == SCHEMA_VERSION and all(cols.get(t) == c for t, c in want.items()):
            return "bench"
    elif app_id == 0 and not tables:
        return "empty"
    elif app_id != 0 or not tables & TABLES:
        names = ", ".join(sorted(tables))[:80] or "none"
        raise StoreError(f"{path} is an SQLite database but not a bench run store (tables: {names}); it is left "
                         "as it is: point --cache-dir or --store elsewhere")
    # bench's tables without the marker (a store made before it, maybe before some tables existed)
    foreign = sorted(tables - set(want))
    wrong = next((t for t in sorted(tables & set(want)) if cols[t] != want[t]), None)
    if foreign or wrong is not None:
        what = (f"tables: {', '.join(sorted(tables))}" if foreign else
                f"its table {wrong} has columns {', '.join(cols[wrong])}")[:100]
        raise StoreError(f"{path} is an SQLite database but not a bench run store of this schema ({what}): another "
                         "program's database or a store of an older bench; it is left as it is: point --cache-dir "
                         "or --store at a new path")
    return "legacy"


def probe(path: str | Path) -> None:
    """Refuse (StoreError, one line) a file that exists but is not a bench run store.

    Reads only: nothing is created, so a config can be checked before any work.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"run store {path} is not a file; point --cache-dir or --store elsewhere")
    inspect_file(path)


def read_runs(path: str | Path) -> list[dict]:
    """The runs recorded in the store at `path`, oldest first (read only; [] for a store without any).

    A run that started but never finished (killed, or its machine went down) is listed with
    status "incomplete (...)" unless a run holds the store now ("running").
    """
    path = Path(path).expanduser()
    probe(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        with closing(_read_only(path)) as con:
            if "runs" not in table_names(con):  # a store made before runs were recorded
                return []
            rows = con.execute("SELECT started, finished, folder, config, n_errors, status FROM runs "
                               "ORDER BY started").fetchall()
    except sqlite3.DatabaseError as e:
        raise describe(path, e) from None
    out = []
    for started, finished, folder, config, n_errors, status in rows:
        try:
            cfg = json.loads(config)
        except (TypeError, ValueError):
            cfg = {}
        if finished is None:
            status = "running" if _held(path) else "incomplete (never finished: killed or crashed; rerun it to " \
                                                   "finish the missing work)"
        out.append(dict(started=started, finished=finished,
                        seconds=(finished if finished is not None else time.time()) - started, folder=folder,
                        dataset=cfg.get("dataset"), model=cfg.get("model"), config=cfg, n_errors=n_errors,
                        status=status, store=str(path)))
    return out


def _held(path: Path) -> bool:
    """Whether a run holds the store at `path` now (its lock file is locked)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False
