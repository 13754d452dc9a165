"""Per-instance records in SQLite: resumable, transactional, auditable.

`records` holds what a method produced for one error (the counterfactual or
attribution map itself as compressed float32 bytes, success, reason, queries, gradient
queries, seconds). `scores` holds one metric value per (entry, instance, metric, version).
An *entry key* hashes everything a result depends on (dataset, model weights, error-set
manifest, method name, parameters and version, target mode), so a rerun with the same
configuration finds its finished work and skips it, and a changed parameter or version
starts a new entry instead of mixing results. Each batch is written in one transaction.
`runs` lists every run that used the store (times, folder, config, errors, status); a store
made before that table existed gains it when opened.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
import zlib
from contextlib import closing
from pathlib import Path

import numpy as np

FIT = "_fit"  # the costs row of a method's one-off fit() (n = model queries)

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


def entry_key(**parts) -> str:
    """Stable hash of everything a method's results depend on."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 6)


def unpack(blob: bytes) -> np.ndarray:
    return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)


class StoreError(ValueError):
    """The store file is not a bench run store, is damaged, or another run holds it."""


TABLES = {"entries", "records", "costs", "scores"}  # what makes a file a bench store ("runs" came later)


def _tables(con: sqlite3.Connection) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _refuse_foreign(path: Path, tables: set[str]) -> None:
    if tables and not tables & TABLES:
        raise StoreError(f"{path} is an SQLite database but not a bench run store "
                         f"(tables: {', '.join(sorted(tables))[:80]}); point --cache-dir or "
                         "--store elsewhere")


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=60)


def probe(path: str | Path) -> None:
    """Refuse (StoreError, one line) a file that exists but is not a bench run store.

    Reads only: nothing is created, so a config can be checked before any work.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return
    if not path.is_file():
        raise StoreError(f"run store {path} is not a file; point --cache-dir or --store elsewhere")
    try:
        with closing(_read_only(path)) as con:
            _refuse_foreign(path, _tables(con))
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a usable bench run store ({e}); move it away or point "
                         "--cache-dir or --store elsewhere") from None


def read_runs(path: str | Path) -> list[dict]:
    """The runs recorded in the store at `path`, oldest first (read only; [] for a store without any)."""
    path = Path(path).expanduser()
    probe(path)
    if not path.exists():
        return []
    with closing(_read_only(path)) as con:
        if "runs" not in _tables(con):  # a store made before runs were recorded
            return []
        rows = con.execute("SELECT started, finished, folder, config, n_errors, status FROM runs "
                           "ORDER BY started").fetchall()
    out = []
    for started, finished, folder, config, n_errors, status in rows:
        cfg = json.loads(config)
        out.append(dict(started=started, finished=finished, seconds=finished - started, folder=folder,
                        dataset=cfg.get("dataset"), model=cfg.get("model"), config=cfg, n_errors=n_errors,
                        status=status, store=str(path)))
    return out


class Store:
    """A SQLite file of entries, per-instance records and per-instance scores.

    A file that is not a bench store (another SQLite database, a truncated or foreign file)
    is refused with one line naming it; nothing in it is changed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = None
        try:
            self._create()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a usable bench run store ({e}); move it away "
                             "(a new run then starts an empty store) or point --cache-dir elsewhere") from None

    def _create(self) -> None:
        """Make the tables if missing. Two processes creating one new file at once can meet
        "database is locked" on the switch to WAL, which SQLite does not wait on: retry for 60 s."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with closing(self._connect()) as con, con:
                    _refuse_foreign(self.path, _tables(con))
                    con.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def acquire(self) -> "Store":
        """Hold this store for one run; a second run on the same store is refused, not interleaved."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path) + ".lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise StoreError(f"another bench run is using the run store {self.path}; wait for it to "
                             "finish, or give this run its own --cache-dir or --store") from None
        self._lock = lock
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def add_entry(self, key: str, task: str, method: str, mode: str, version: str,
                  params: dict, context: dict) -> None:
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR IGNORE INTO entries VALUES (?,?,?,?,?,?,?,?)",
                        (key, task, method, mode, version, json.dumps(params, sort_keys=True),
                         json.dumps(context, sort_keys=True), time.time()))

    def done_indices(self, key: str) -> set[int]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT test_index FROM records WHERE entry_key=?", (key,))
            return {r[0] for r in rows}

    def add_records(self, key: str, rows: list[dict]) -> None:
        """Insert one batch of records (dicts with test_index, success, reason, queries,
        grad_queries, seconds, explained, contrast, artifact ndarray) in one transaction."""
        now = time.time()
        with closing(self._connect()) as con, con:
            con.executemany(
                "INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(key, int(r["test_index"]), int(bool(r["success"])), r.get("reason", ""),
                  float(r.get("queries", 0)), float(r.get("grad_queries", 0)), float(r["seconds"]),
                  r.get("explained"), r.get("contrast"), pack(r["artifact"]), now) for r in rows])

    def records(self, key: str, indices: list[int] | None = None) -> list[dict]:
        """Records of an entry (optionally only `indices`), in test-index order."""
        with closing(self._connect()) as con:
            rows = con.execute(
                "SELECT test_index, success, reason, queries, grad_queries, seconds, explained, "
                "contrast, artifact FROM records WHERE entry_key=? ORDER BY test_index", (key,)).fetchall()
        wanted = None if indices is None else set(indices)
        out = []
        for t, s, reason, q, gq, sec, expl, con_, blob in rows:
            if wanted is None or t in wanted:
                out.append(dict(test_index=t, success=bool(s), reason=reason, queries=q,
                                grad_queries=gq, seconds=sec, explained=expl, contrast=con_,
                                artifact=unpack(blob)))
        return out

    def scored_indices(self, key: str, metric: str, version: str) -> set[int]:
        with closing(self._connect()) as con:
            rows = con.execute("SELECT test_index FROM scores WHERE entry_key=? AND metric=? AND version=?",
                               (key, metric, version))
            return {r[0] for r in rows}

    def add_scores(self, key: str, metric: str, version: str, indices: list[int], values: list[float]) -> None:
        with closing(self._connect()) as con, con:
            con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?)",
                            [(key, int(i), metric, version, float(v)) for i, v in zip(indices, values)])

    def scores(self, key: str, metric: str, version: str, indices: list[int]) -> np.ndarray:
        """Scores in the order of `indices` (NaN where missing)."""
        with closing(self._connect()) as con:
            rows = dict(con.execute("SELECT test_index, value FROM scores WHERE entry_key=? AND metric=? "
                                    "AND version=?", (key, metric, version)).fetchall())
        values = [rows.get(int(i)) for i in indices]  # NaN is stored as NULL -> None
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def set_fit_cost(self, key: str, queries: float, seconds: float, info: dict | None = None) -> None:
        """Record what the method's one-off fit() cost for entry `key` (the last fit counts), and what it loaded."""
        with closing(self._connect()) as con, con:
            con.execute("DELETE FROM costs WHERE entry_key=? AND metric=?", (key, FIT))
            con.execute("INSERT INTO costs VALUES (?,?,?,?,?,?)", (key, FIT, "1", queries, seconds, time.time()))
            if info is not None:
                con.execute("INSERT OR REPLACE INTO fit_info VALUES (?,?)", (key, json.dumps(info, default=str)))

    def fit_info(self, key: str) -> dict | None:
        """What entry `key`'s last fit() trained or loaded (`Method.fit_info`), or None."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT info FROM fit_info WHERE entry_key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def fit_cost(self, key: str) -> tuple[float, float] | None:
        """(model queries, seconds) of entry `key`'s last fit(), or None if never recorded."""
        with closing(self._connect()) as con:
            row = con.execute("SELECT n, seconds FROM costs WHERE entry_key=? AND metric=?", (key, FIT)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def add_cost(self, key: str, metric: str, version: str, n: int, seconds: float) -> None:
        """Record that scoring `n` instances with `metric` took `seconds` (audit of metric cost)."""
        with closing(self._connect()) as con, con:
            con.execute("INSERT INTO costs VALUES (?,?,?,?,?,?)", (key, metric, version, n, seconds, time.time()))

    def cost(self, key: str) -> dict[str, tuple[int, float]]:
        """metric -> (instances scored, seconds spent), summed over every time it was computed."""
        with closing(self._connect()) as con:
            rows = con.execute("SELECT metric, SUM(n), SUM(seconds) FROM costs WHERE entry_key=? AND metric != ? "
                               "GROUP BY metric", (key, FIT)).fetchall()
        return {m: (int(n), float(s)) for m, n, s in rows}

    def add_run(self, seconds: float, folder: str | Path, config: dict, n_errors: int, status: str) -> None:
        """Record a run that used this store: it ended now after `seconds`; status "done" or why not."""
        finished = time.time()
        with closing(self._connect()) as con, con:
            con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?)",
                        (finished - seconds, finished, str(folder), json.dumps(config, sort_keys=True, default=str),
                         int(n_errors), status))

    def runs(self) -> list[dict]:
        """Every run recorded here, oldest first (see read_runs)."""
        return read_runs(self.path)

    def dump(self):
        """(entries, scores, records) as pandas DataFrames, records without their artifacts (bench.load)."""
        import pandas as pd

        with closing(self._connect()) as con:
            entries = pd.read_sql_query("SELECT entry_key, task, method, mode, version, params FROM entries", con)
            scores = pd.read_sql_query("SELECT entry_key, test_index, metric, version, value FROM scores", con)
            records = pd.read_sql_query("SELECT entry_key, test_index, success, reason, queries, grad_queries, "
                                        "seconds, explained, contrast FROM records", con)
        records["success"] = records["success"].astype(bool)
        return entries, scores, records

