"""Score stored results with registered metrics, computing only what the store lacks."""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from bench.leaderboard import MetricMeta

CHUNK = 256


def metric_meta(fn) -> MetricMeta:
    return MetricMeta(fn.metric_name, fn.higher_is_better, fn.valid_only, fn.definition, fn.version)


def score_entry(prep, key: str, indices: np.ndarray, metric_fns: list, make_batch, progress: bool = True,
                metric_params: dict | None = None) -> dict[str, np.ndarray]:
    """Per-instance scores of entry `key` for each metric, aligned to error positions `indices`.

    Missing scores are computed from the stored records in chunks (one batch built per
    chunk, shared by all metrics) and written back; existing ones are read from the store.
    """
    metric_params = metric_params or {}
    test_idx = [int(t) for t in prep.errors.index[indices].tolist()]
    missing = {f.metric_name: set(test_idx) - prep.store.scored_indices(key, f.metric_name, f.version)
               for f in metric_fns}
    todo = sorted(set().union(*missing.values())) if missing else []
    for start in tqdm(range(0, len(todo), CHUNK), desc="score", disable=not progress or not todo, leave=False):
        chunk = todo[start:start + CHUNK]
        batch = make_batch(prep.store.records(key, chunk))
        for f in metric_fns:
            need = [i for i in chunk if i in missing[f.metric_name]]
            if not need:
                continue
            values = f(batch, prep.metric_ctx, **metric_params.get(f.metric_name, {}))
            values = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, np.float64)
            pos = {t: j for j, t in enumerate(chunk)}
            prep.store.add_scores(key, f.metric_name, f.version, need, [values[pos[i]] for i in need])
    return {f.metric_name: prep.store.scores(key, f.metric_name, f.version, test_idx) for f in metric_fns}
