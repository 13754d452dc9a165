"""Per-instance records in SQLite: resumable, transactional, auditable.

`records` holds what a method produced for one error (the counterfactual or
attribution map itself as compressed float32 bytes, success, reason, queries, gradient
queries, seconds). `scores` holds one metric value per (entry, instance, metric, version).
An *entry key* hashes everything a result depends on (dataset, model weights, error-set
manifest, method name, parameters and version, target mode), so a rerun with the same
configuration finds its finished work and skips it, and a changed parameter or version
starts a new entry instead of mixing results. Each batch is written in one transaction.
`runs` lists every run that used the store (times, folder, config, errors, status); a store
made before that table existed gains it when opened. What makes a file a bench store (schema,
marker, one-line failure descriptions) is bench/store_file.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import time
import zlib
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

from bench.store_file import (  # noqa: F401 - SCHEMA, TABLES, probe, read_runs: re-exported (the store's public names)
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_SQL,
    SCHEMA_VERSION,
    TABLES,
    StoreError,
    describe,
    inspect_file,
    probe,
    read_runs,
    schema_columns,
    table_names,
)

FIT = "_fit"  # the costs row of a method's one-off fit() (n = model queries)


def entry_key(**parts) -> str:
    """Stable hash of everything a method's results depend on."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def pack(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return zlib.compress(buf.getvalue(), 6)


def unpack(blob: bytes) -> np.ndarray:
    """The array `pack` stored; a damaged blob raises ValueError (zlib's or numpy's reason)."""
    try:
        return np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False)
    except (zlib.error, ValueError, OSError, EOFError, TypeError) as e:
        raise ValueError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}") from None


class Store:
    """A SQLite file of entries, per-instance records and per-instance scores.

    A file that is not a bench store (another SQLite database, a truncated or foreign file)
    is refused with one line naming it; nothing in it is changed.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = None
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"run store {self.path} is not a file; point --cache-dir or --store elsewhere")
        kind = inspect_file(self.path) if self.path.exists() else "empty"
        if kind == "bench":
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._create()
        except sqlite3.DatabaseError as e:
            raise describe(self.path, e) from None

    def _create(self) -> None:
        """Make the tables if missing and stamp bench's marker. Two processes creating one new file at once
        can meet "database is locked" on the switch to WAL, which SQLite does not wait on: retry for 60 s."""
        deadline = time.monotonic() + 60
        while True:
            try:
                with closing(self._connect()) as con, con:
                    if con.execute("PRAGMA application_id").fetchone()[0] not in (0, APPLICATION_ID):
                        raise StoreError(f"{self.path} is an SQLite database but not a bench run store; it is "
                                         "left as it is: point --cache-dir or --store elsewhere")
                    tables = table_names(con)
                    if tables - set(schema_columns()):  # somebody else made it between our look and now
                        raise StoreError(f"{self.path} is an SQLite database but not a bench run store (tables: "
                                         f"{', '.join(sorted(tables))[:80]}); point --cache-dir or --store elsewhere")
                    for stmt in SCHEMA_SQL:
                        con.execute(stmt)
                    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _db(self, write: bool = False):
        """A connection (a transaction when `write`); SQLite and decompression errors become one StoreError line."""
        try:
            with closing(self._connect()) as con:
                if write:
                    with con:
                        yield con
                else:
                    yield con
        except sqlite3.DatabaseError as e:
            raise describe(self.path, e) from None

    def acquire(self) -> "Store":
        """Hold this store for one run; a second run on the same store is refused, not interleaved.

        The store's pages are checked (SQLite's quick_check): a damaged store is refused here, in
        one line, before the run loads any data.
        """
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.path) + ".lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise StoreError(f"another bench run is using the run store {self.path}; wait for it to "
                             "finish, or give this run its own --cache-dir or --store") from None
        self._lock = lock
        try:  # a run reads every page it needs: damage anywhere is named now, before any work
            with closing(self._connect()) as con:
                problem = con.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as e:
            self.release()
            raise describe(self.path, e) from None
        if problem != "ok":
            self.release()
            raise describe(self.path, sqlite3.DatabaseError(f"quick_check: {problem}"))
        return self

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except BaseException:
            con.close()
            raise
        return con

    def add_entry(self, key: str, task: str, method: str, mode: str, version: str,
                  params: dict, context: dict) -> None:
        with self._db(write=True) as con:
            con.execute("INSERT OR IGNORE INTO entries VALUES (?,?,?,?,?,?,?,?)",
                        (key, task, method, mode, version, json.dumps(params, sort_keys=True),
                         json.dumps(context, sort_keys=True), time.time()))

    def done_indices(self, key: str) -> set[int]:
        with self._db() as con:
            rows = con.execute("SELECT test_index FROM records WHERE entry_key=?", (key,))
            return {r[0] for r in rows}

    def add_records(self, key: str, rows: list[dict]) -> None:
        """Insert one batch of records (dicts with test_index, success, reason, queries,
        grad_queries, seconds, explained, contrast, artifact ndarray) in one transaction."""
        now = time.time()
        with self._db(write=True) as con:
            con.executemany(
                "INSERT OR REPLACE INTO records VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(key, int(r["test_index"]), int(bool(r["success"])), r.get("reason", ""),
                  float(r.get("queries", 0)), float(r.get("grad_queries", 0)), float(r["seconds"]),
                  r.get("explained"), r.get("contrast"), pack(r["artifact"]), now) for r in rows])

    def records(self, key: str, indices: list[int] | None = None) -> list[dict]:
        """Records of an entry (optionally only `indices`), in test-index order."""
        with self._db() as con:
            rows = con.execute(
                "SELECT test_index, success, reason, queries, grad_queries, seconds, explained, "
                "contrast, artifact FROM records WHERE entry_key=? ORDER BY test_index", (key,)).fetchall()
        wanted = None if indices is None else set(indices)
        out = []
        for t, s, reason, q, gq, sec, expl, con_, blob in rows:
            if wanted is None or t in wanted:
                try:
                    artifact = unpack(blob)
                except ValueError as e:
                    raise StoreError(f"the run store {self.path} is damaged: the stored result of entry {key} for "
                                     f"test index {t} cannot be read ({e}); point --cache-dir or --store at a new "
                                     "path (a new store recomputes it), or delete the store") from None
                out.append(dict(test_index=t, success=bool(s), reason=reason, queries=q,
                                grad_queries=gq, seconds=sec, explained=expl, contrast=con_,
                                artifact=artifact))
        return out

    def scored_indices(self, key: str, metric: str, version: str) -> set[int]:
        with self._db() as con:
            rows = con.execute("SELECT test_index FROM scores WHERE entry_key=? AND metric=? AND version=?",
                               (key, metric, version))
            return {r[0] for r in rows}

    def add_scores(self, key: str, metric: str, version: str, indices: list[int], values: list[float]) -> None:
        with self._db(write=True) as con:
            con.executemany("INSERT OR REPLACE INTO scores VALUES (?,?,?,?,?)",
                            [(key, int(i), metric, version, float(v)) for i, v in zip(indices, values)])

    def scores(self, key: str, metric: str, version: str, indices: list[int]) -> np.ndarray:
        """Scores in the order of `indices` (NaN where missing)."""
        with self._db() as con:
            rows = dict(con.execute("SELECT test_index, value FROM scores WHERE entry_key=? AND metric=? "
                                    "AND version=?", (key, metric, version)).fetchall())
        values = [rows.get(int(i)) for i in indices]  # NaN is stored as NULL -> None
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    def set_fit_cost(self, key: str, queries: float, seconds: float, info: dict | None = None) -> None:
        """Record what the method's one-off fit() cost for entry `key` (the last fit counts), and what it loaded."""
        with self._db(write=True) as con:
            con.execute("DELETE FROM costs WHERE entry_key=? AND metric=?", (key, FIT))
            con.execute("INSERT INTO costs VALUES (?,?,?,?,?,?)", (key, FIT, "1", queries, seconds, time.time()))
            if info is not None:
                con.execute("INSERT OR REPLACE INTO fit_info VALUES (?,?)", (key, json.dumps(info, default=str)))

    def fit_info(self, key: str) -> dict | None:
        """What entry `key`'s last fit() trained or loaded (`Method.fit_info`), or None."""
        with self._db() as con:
            row = con.execute("SELECT info FROM fit_info WHERE entry_key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def fit_cost(self, key: str) -> tuple[float, float] | None:
        """(model queries, seconds) of entry `key`'s last fit(), or None if never recorded."""
        with self._db() as con:
            row = con.execute("SELECT n, seconds FROM costs WHERE entry_key=? AND metric=?", (key, FIT)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def add_cost(self, key: str, metric: str, version: str, n: int, seconds: float) -> None:
        """Record that scoring `n` instances with `metric` took `seconds` (audit of metric cost)."""
        with self._db(write=True) as con:
            con.execute("INSERT INTO costs VALUES (?,?,?,?,?,?)", (key, metric, version, n, seconds, time.time()))

    def cost(self, key: str) -> dict[str, tuple[int, float]]:
        """metric -> (instances scored, seconds spent), summed over every time it was computed."""
        with self._db() as con:
            rows = con.execute("SELECT metric, SUM(n), SUM(seconds) FROM costs WHERE entry_key=? AND metric != ? "
                               "GROUP BY metric", (key, FIT)).fetchall()
        return {m: (int(n), float(s)) for m, n, s in rows}

    def add_run(self, seconds: float, folder: str | Path, config: dict, n_errors: int, status: str) -> None:
        """Record a run that used this store: it ended now after `seconds`; status "done" or why not."""
        finished = time.time()
        with self._db(write=True) as con:
            con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?)",
                        (finished - seconds, finished, str(folder), json.dumps(config, sort_keys=True, default=str),
                         int(n_errors), status))

    def start_run(self, folder: str | Path, config: dict, n_errors: int) -> int:
        """Record that a run started now (finished: NULL until `finish_run`); returns its row id.

        A run killed before it finishes stays in `runs` without a finish time: `bench runs`
        lists it as incomplete.
        """
        with self._db(write=True) as con:
            cur = con.execute("INSERT INTO runs VALUES (?,?,?,?,?,?)",
                              (time.time(), None, str(folder), json.dumps(config, sort_keys=True, default=str),
                               int(n_errors), "running"))
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str) -> None:
        """The run `start_run` recorded ended now with `status` ("done" or why not)."""
        with self._db(write=True) as con:
            con.execute("UPDATE runs SET finished=?, status=? WHERE rowid=?", (time.time(), status, run_id))

    def runs(self) -> list[dict]:
        """Every run recorded here, oldest first (see read_runs)."""
        return read_runs(self.path)

    def dump(self):
        """(entries, scores, records) as pandas DataFrames, records without their artifacts (bench.load)."""
        import pandas as pd

        try:
            with self._db() as con:
                entries = pd.read_sql_query("SELECT entry_key, task, method, mode, version, params FROM entries", con)
                scores = pd.read_sql_query("SELECT entry_key, test_index, metric, version, value FROM scores", con)
                records = pd.read_sql_query("SELECT entry_key, test_index, success, reason, queries, grad_queries, "
                                            "seconds, explained, contrast FROM records", con)
        except pd.errors.DatabaseError as e:  # pandas wraps SQLite's error in its own type
            cause = e.__cause__ if isinstance(e.__cause__, sqlite3.DatabaseError) else sqlite3.DatabaseError(
                str(e).rpartition(": ")[2])
            raise describe(self.path, cause) from None
        records["success"] = records["success"].astype(bool)
        return entries, scores, records

