"""A run store held in memory by a worker, replayed into the SQLite store by the driver (one writer).

`MemoryStore` answers what an explain unit asks of a store (bench.pipeline.produce and
bench.scoring.score_entry: done indices, records, scored indices, scores) from what the driver
sent with the unit, and keeps what the unit adds. `export()` hands the additions back as plain
data (Ray ships it to the driver); `replay(store, added)` writes them into the real store: entries,
then records, fit costs, scores and metric costs, one transaction per call, so an interruption
leaves at worst records without their scores, which the next run computes.
"""

from __future__ import annotations

import numpy as np


def snapshot(store, keys: list[str], test_indices: list[int], metrics: list[tuple[str, str]]) -> dict:
    """What a worker needs of `store` for entries `keys` on `test_indices`: existing records and scored indices."""
    wanted = [int(t) for t in test_indices]
    out = {}
    for key in keys:
        done = store.done_indices(key) & set(wanted)
        out[key] = dict(records=store.records(key, sorted(done)) if done else [],
                        scored={mv: sorted(store.scored_indices(key, *mv) & set(wanted)) for mv in metrics})
    return out


class MemoryStore:
    """The parts of bench.store.Store an explain unit uses, in memory, seeded by `snapshot`."""

    def __init__(self, known: dict | None = None) -> None:
        self._records: dict[str, dict[int, dict]] = {}
        self._scores: dict[tuple[str, str, str], dict[int, float]] = {}
        self.added = dict(entries=[], records={}, fit={}, scores={}, costs=[])
        for key, s in (known or {}).items():
            self._records[key] = {int(r["test_index"]): r for r in s["records"]}
            for (metric, version), idx in s["scored"].items():
                self._scores[(key, metric, version)] = {int(i): None for i in idx}  # values stay in SQLite

    def add_entry(self, key: str, task: str, method: str, mode: str, version: str, params: dict,
                  context: dict) -> None:
        self.added["entries"].append((key, task, method, mode, version, params, context))

    def done_indices(self, key: str) -> set[int]:
        return set(self._records.get(key, {}))

    def add_records(self, key: str, rows: list[dict]) -> None:
        rows = [dict(r, artifact=np.ascontiguousarray(r["artifact"], dtype=np.float32)) for r in rows]
        self._records.setdefault(key, {}).update({int(r["test_index"]): r for r in rows})
        self.added["records"].setdefault(key, []).extend(rows)

    def records(self, key: str, indices: list[int] | None = None) -> list[dict]:
        have = self._records.get(key, {})
        wanted = sorted(have) if indices is None else sorted(int(i) for i in indices if int(i) in have)
        return [have[i] for i in wanted]

    def set_fit_cost(self, key: str, queries: float, seconds: float, info: dict | None = None) -> None:
        self.added["fit"][key] = (float(queries), float(seconds), info)

    def scored_indices(self, key: str, metric: str, version: str) -> set[int]:
        return set(self._scores.get((key, metric, version), {}))

    def add_scores(self, key: str, metric: str, version: str, indices: list[int], values: list[float]) -> None:
        self._scores.setdefault((key, metric, version), {}).update(zip(map(int, indices), map(float, values)))
        idx, vals = self.added["scores"].setdefault((key, metric, version), ([], []))
        idx.extend(int(i) for i in indices)
        vals.extend(float(v) for v in values)

    def scores(self, key: str, metric: str, version: str, indices: list[int]) -> np.ndarray:
        """Scores this unit computed (NaN for the rest: the driver's store has those)."""
        have = self._scores.get((key, metric, version), {})
        return np.array([np.nan if have.get(int(i)) is None else have[int(i)] for i in indices], dtype=np.float64)

    def add_cost(self, key: str, metric: str, version: str, n: int, seconds: float) -> None:
        self.added["costs"].append((key, metric, version, int(n), float(seconds)))

    def export(self) -> dict:
        return self.added


def replay(store, added: dict) -> int:
    """Write what a unit added (MemoryStore.export) into `store`; returns the records written."""
    for entry in added["entries"]:
        store.add_entry(*entry)
    n = 0
    for key, rows in added["records"].items():
        store.add_records(key, rows)
        n += len(rows)
    for key, (queries, seconds, info) in added["fit"].items():
        store.set_fit_cost(key, queries, seconds, info=info)
    for (key, metric, version), (idx, vals) in added["scores"].items():
        store.add_scores(key, metric, version, idx, vals)
    for cost in added["costs"]:
        store.add_cost(*cost)
    return n
