"""Score stored results with registered metrics, computing only what the store lacks."""

from __future__ import annotations

import logging
import time

import numpy as np

from bench.leaderboard import MetricMeta
from bench.progress import bar as progress_bar

CHUNK = 256
log = logging.getLogger("bench")


def metric_meta(fn) -> MetricMeta:
    return MetricMeta(fn.metric_name, fn.higher_is_better, fn.valid_only, fn.definition, fn.version,
                      getattr(fn, "kind", "mean"))


def metric_cost(store, key: str) -> dict:
    """metric -> {n: instances scored, seconds: time spent} for entry `key` (for provenance)."""
    return {m: dict(n=n, seconds=round(sec, 3)) for m, (n, sec) in store.cost(key).items()}


def _as_array(values) -> np.ndarray:
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, np.float64)


def _guarded(f, batch, ctx, need: list[int], make_batch, key: str, params: dict) -> np.ndarray:
    """f on the batch; if it raises, row by row, so one bad row is one NaN, never a crashed run.

    (Quantus, for one, asserts when a batch's attributions are all zero.)
    """
    try:
        return _as_array(f(batch, ctx.metric_ctx, **params))
    except Exception as e:  # noqa: BLE001 - a metric failure is a NaN score, reported below
        first = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    out = np.full(len(need), np.nan)
    n_failed = 0
    for j, i in enumerate(need):
        try:
            out[j] = _as_array(f(make_batch(ctx.store.records(key, [i])), ctx.metric_ctx, **params))[0]
        except Exception:  # noqa: BLE001
            n_failed += 1
    log.warning("metric %s failed on a batch (%s); %d of %d rows stay NaN", f.metric_name, first[:160],
                n_failed, len(need))
    return out


def score_entry(ctx, key: str, indices: np.ndarray, metric_fns: list, make_batch, progress: bool = True,
                metric_params: dict | None = None, metric_subset: dict | None = None) -> dict[str, np.ndarray]:
    """Per-instance scores of entry `key` for each metric, aligned to error positions `indices`.

    Missing scores are computed from the stored records in chunks (one batch built per
    chunk, shared by all metrics) and written back; existing ones are read from the store.
    `metric_subset` (metric -> n) scores that metric on the first n instances only; the
    rest of its array is NaN and the leaderboard reports its own n. The seconds each metric
    spends are recorded in the store (`Store.cost`), so provenance can report metric cost.
    """
    metric_params, metric_subset = metric_params or {}, metric_subset or {}
    test_idx = [int(t) for t in ctx.errors.index[indices].tolist()]
    wanted = {f.metric_name: test_idx[:metric_subset.get(f.metric_name, len(test_idx))] for f in metric_fns}
    missing = {f.metric_name: set(wanted[f.metric_name]) - ctx.store.scored_indices(key, f.metric_name, f.version)
               for f in metric_fns}
    todo = sorted(set().union(*missing.values())) if missing else []
    bar = progress_bar(len(todo) * len(metric_fns), f"score {key[:8]}", unit="score", progress=progress)
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start:start + CHUNK]
        full_batch = make_batch(ctx.store.records(key, chunk))
        for f in metric_fns:
            need = [i for i in chunk if i in missing[f.metric_name]]
            if not need:
                continue
            batch = full_batch if len(need) == len(chunk) else make_batch(ctx.store.records(key, need))
            t0 = time.perf_counter()
            values = _guarded(f, batch, ctx, need, make_batch, key, metric_params.get(f.metric_name, {}))
            ctx.store.add_cost(key, f.metric_name, f.version, len(need), time.perf_counter() - t0)
            ctx.store.add_scores(key, f.metric_name, f.version, need, values.tolist())
            bar.set_postfix_str(f.metric_name, refresh=False)
            bar.update(len(chunk))
    bar.close()
    out = {}
    for f in metric_fns:
        v = ctx.store.scores(key, f.metric_name, f.version, test_idx)
        v[len(wanted[f.metric_name]):] = np.nan
        out[f.metric_name] = v
    return out
