"""Results read back: a board or run folder, or a run store, as pandas DataFrames (`bench.load`).

Long format: one row per (task, method, mode, test_index, metric) with its `value`; the
stored per-instance records (queries, seconds, success, labels) are `Results.records`. This
module runs nothing (bench.python_api.run does), so anything may read results with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import board

KEYS = ["task", "method", "mode", "test_index"]
RECORD_COLUMNS = ["true", "pred", "explained", "contrast", "success", "reason", "queries", "grad_queries",
                  "seconds"]


@dataclass
class Results:
    """A run's or a board's results.

    Attributes:
        tables: a board table's stem (bench.board.STEMS) -> the leaderboard table (as its CSV).
        records: one row per (task, method, mode, test_index): labels, success, cost.
        instances: per-instance scores, long: task, method, mode, test_index, metric, value.
        provenance: stem -> the leaderboard's provenance JSON (empty for a bare store).
        folder: where the tables were read from or written to (None for a store).
        summary: what `bench.run` returned about the run (phases, seconds, paths); {} for load.
    """

    tables: dict[str, pd.DataFrame]
    records: pd.DataFrame
    instances: pd.DataFrame
    provenance: dict[str, dict] = field(default_factory=dict)
    folder: Path | None = None
    summary: dict = field(default_factory=dict)

    @property
    def counterfactuals(self) -> pd.DataFrame:
        return self.tables.get(board.COUNTERFACTUALS.stem, pd.DataFrame())

    @property
    def attributions(self) -> pd.DataFrame:
        return self.tables.get(board.ATTRIBUTIONS.stem, pd.DataFrame())

    def to_parquet(self, path: str | Path) -> Path:
        """Write the per-instance scores (long format) to one parquet file (needs pyarrow)."""
        path = Path(path)
        self.instances.to_parquet(path, index=False)
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-instance scores (long format) to one CSV file."""
        path = Path(path)
        self.instances.to_csv(path, index=False)
        return path

    def __repr__(self) -> str:
        parts = [f"{k}: {len(v)} rows" for k, v in self.tables.items()]
        return f"Results({', '.join(parts)}; {len(self.instances)} scores; folder={self.folder})"


def load(source: str | Path) -> Results:
    """Results from a board or run folder (its CSV tables and per-instance CSVs) or a run store (.sqlite)."""
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".sqlite":
        return _from_store(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{source}: neither a board/run folder nor a .sqlite run store")
    from bench.boardcheck import check_board

    check_board(path)  # the files match their provenance (rows, n, manifest, artifacts), or one BoardError line
    tables, provenance, long, records = {}, {}, [], []
    for t in board.TABLES:
        if t.csv(path).exists():
            tables[t.stem] = board.read_table(t.csv(path))
        if t.json(path).exists():
            provenance[t.stem] = board.read_json(t.json(path))
        if t.instances(path).exists():
            df = board.read_instances(t.instances(path)).assign(task=t.kind)
            df[["mode", "reason"]] = df[["mode", "reason"]].fillna("")
            records.append(df[[c for c in [*KEYS, *RECORD_COLUMNS] if c in df.columns]])
            metrics = [c for c in df.columns if c not in {*KEYS, *RECORD_COLUMNS}]
            long.append(df.melt(id_vars=KEYS, value_vars=metrics, var_name="metric").dropna(subset=["value"]))
    if not tables:
        raise FileNotFoundError(f"{source}: no counterfactuals.csv or attributions.csv in this folder")
    return Results(tables, _concat(records, KEYS + RECORD_COLUMNS), _concat(long, [*KEYS, "metric", "value"]),
                   provenance, path)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _from_store(path: Path) -> Results:
    """Everything a run store holds, in long format (no leaderboard tables: a store has no aggregate)."""
    from bench.store import Store

    store = Store(path)
    entries, scores, records = store.dump()
    names = entries.set_index("entry_key")[["task", "method", "mode"]]
    rec = records.join(names, on="entry_key")[[*KEYS, "success", "reason", "queries", "grad_queries",
                                              "seconds", "explained", "contrast", "entry_key"]]
    sc = scores.join(names, on="entry_key")[[*KEYS, "metric", "value", "version", "entry_key"]]
    return Results({}, rec, sc, {}, None)
