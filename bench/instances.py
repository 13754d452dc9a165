"""Per-instance export next to a leaderboard: the rows and images behind every cell.

A board folder gets `<stem>_instances.csv` (one row per method, mode and error: labels,
success, reason, cost and every per-instance metric score found in the run store) and
`<stem>_artifacts.npz` (each entry's counterfactuals or attribution maps as float16, plus
the error images), so a fresh clone without the SQLite store can still show each error.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from bench import atomic, board

RECORD_COLUMNS = ["queries", "grad_queries", "seconds"]
FLOAT_FORMAT = "%.7g"  # per-instance values as published: a board's tables are recomputed from exactly these


def published(values) -> np.ndarray:
    """`values` (float64) rounded as the instances CSV writes them, so a board aggregates what it ships."""
    v = np.asarray(values, np.float64)
    return np.array([float(FLOAT_FORMAT % x) if np.isfinite(x) else x for x in v.ravel()], np.float64).reshape(v.shape)
F16_MAX = float(np.finfo(np.float16).max)


def _f16(images: list[np.ndarray]) -> np.ndarray:
    """Stack (C,H,W) images as float16 (n,H,W) (or (n,C,H,W) when C > 1), clipped to float16's range."""
    a = np.stack(images).astype(np.float32) if images else np.zeros((0, 1, 28, 28), np.float32)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    return np.clip(a, -F16_MAX, F16_MAX).astype(np.float16)


def write_instances(store, entries: list[dict], errors, out_dir: Path, stem: str,
                    metrics: list | None = None) -> list[Path]:
    """Write <stem>_instances.csv and <stem>_artifacts.npz for a leaderboard's entries.

    Args:
        store: the run's `bench.store.Store`.
        entries: dicts with `entry_key`, `method`, optional `mode` and `n` (the tasks' entries).
        errors: the run's `ErrorSet` (test index, image, true and predicted label per error).
        out_dir: the board folder.
        stem: the leaderboard's table stem (bench.board.STEMS).
        metrics: objects with `name` and `version` (the leaderboard's metrics); each one the
            store holds for an entry becomes a score column (the record columns are not repeated).

    Returns:
        The two written paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    true = dict(zip(errors.index.tolist(), errors.true.tolist()))
    pred = dict(zip(errors.index.tolist(), errors.pred.tolist()))
    rows, arrays, score_cols = [], {}, []
    for e in entries:
        mode = e.get("mode", "") or ""
        recs = store.records(e["entry_key"], errors.index[: e.get("n", len(errors))].tolist())
        idx = [r["test_index"] for r in recs]
        scores = {}
        for m in metrics or []:
            if m.name in RECORD_COLUMNS or not store.scored_indices(e["entry_key"], m.name, m.version):
                continue
            scores[m.name] = store.scores(e["entry_key"], m.name, m.version, idx)
            if m.name not in score_cols:
                score_cols.append(m.name)
        for j, r in enumerate(recs):
            t = r["test_index"]
            rows.append(dict(method=e["method"], mode=mode, test_index=t, true=true.get(t), pred=pred.get(t),
                             explained=r["explained"], contrast=r["contrast"], success=bool(r["success"]),
                             reason=r["reason"] or "", **{k: r[k] for k in RECORD_COLUMNS},
                             **{k: v[j] for k, v in scores.items()}))
        arrays[f"{e['method']}|{mode}"] = _f16([r["artifact"] for r in recs])
    columns = ["method", "mode", "test_index", "true", "pred", "explained", "contrast", "success", "reason",
               *RECORD_COLUMNS, *score_cols]
    df = pd.DataFrame(rows, columns=columns)
    for c in ("true", "pred", "explained", "contrast"):
        df[c] = df[c].astype("Int64")
    csv_path, npz_path = board.table(stem).instances(out_dir), board.table(stem).artifacts(out_dir)
    atomic.write_bytes(csv_path, df.to_csv(index=False, float_format=FLOAT_FORMAT).encode())
    arrays["errors"] = _f16([x.numpy() for x in errors.x])
    arrays["errors_index"] = errors.index.numpy().astype(np.int64)
    arrays["errors_true"] = errors.true.numpy().astype(np.int64)
    arrays["errors_pred"] = errors.pred.numpy().astype(np.int64)
    if errors.mask is not None:  # the ground truth of a controlled set (bench.data.controlled)
        arrays["errors_mask"] = errors.mask.numpy()[:, 0].astype(bool)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic.write_bytes(npz_path, buf.getvalue())
    return [csv_path, npz_path]

