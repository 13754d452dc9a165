"""The attribution task: every configured method x target mode on the errors -> leaderboard.

Target modes: "predicted" explains the wrong class P the model chose; "true" explains the
true class Q; "contrast" explains P against Q ("why P rather than Q?": the method gets
`contrast=Q`). Each (method, mode) is one leaderboard row.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from bench import leaderboard, provenance
from bench.api.metrics import AttrBatch
from bench.config import TARGET_MODES
from bench.counterfactual_task import leaderboard_notes
from bench.instances import write_instances
from bench.progress import bar as progress_bar
from bench.progress import live_queries
from bench.scoring import metric_cost, metric_meta, score_entry
from bench.stats import paired_pvalue
from metrics import ATTR_METRICS
from solvers import ATTRIBUTIONS

MODES = TARGET_MODES
CONTROL = "random"
SANITY_METRIC = "deletion_auc"
log = logging.getLogger("bench")


def _targets(errs, mode: str, pos: torch.Tensor):
    if mode == "predicted":
        return errs.pred[pos], None
    if mode == "true":
        return errs.true[pos], None
    if mode == "contrast":
        return errs.pred[pos], errs.true[pos]
    raise ValueError(f"unknown attribution target mode {mode!r} ({' | '.join(MODES)})")


def _explain(prep, method, key: str, mode: str, indices: np.ndarray, bs: int, progress: bool) -> None:
    errs = prep.errors
    done = prep.store.done_indices(key)
    todo = [i for i in indices if int(errs.index[i]) not in done]
    bar = progress_bar(len(todo), f"attr {method.registry_name}/{mode}", progress=progress)
    prep.oracle.on_rows = live_queries(bar)
    for start in range(0, len(todo), bs):
        pos = torch.tensor(todo[start:start + bs])
        explained, contrast = _targets(errs, mode, pos)
        x = errs.x[pos].to(prep.device)
        prep.oracle.start(len(pos))
        t0 = time.perf_counter()
        result = method(x, explained.to(prep.device), None if contrast is None else contrast.to(prep.device))
        seconds = (time.perf_counter() - t0) / len(pos)
        if result.attr.shape != x.shape:
            raise TypeError(f"method {method.registry_name!r} returned attr {tuple(result.attr.shape)} "
                            f"for x {tuple(x.shape)}")
        prep.store.add_records(key, [
            dict(test_index=int(errs.index[p]), success=True, reason="", queries=float(prep.oracle.queries[j]),
                 grad_queries=float(prep.oracle.grad_queries[j]), seconds=seconds, explained=int(explained[j]),
                 contrast=None if contrast is None else int(contrast[j]),
                 artifact=result.attr[j].detach().float().cpu().numpy())
            for j, p in enumerate(pos.tolist())])
        bar.update(len(pos))
    prep.oracle.on_rows = None
    prep.oracle.start(0)
    bar.close()


def _batch_fn(prep, method, name: str):
    def make(records: list[dict]) -> AttrBatch:
        pos = prep.errors.position(torch.tensor([r["test_index"] for r in records]))
        contrast = None if records[0]["contrast"] is None else torch.tensor([r["contrast"] for r in records])
        dev_contrast = None if contrast is None else contrast.to(prep.device)

        def explain_fn(x: torch.Tensor, explained: torch.Tensor) -> torch.Tensor:
            c = dev_contrast if dev_contrast is not None and len(dev_contrast) == len(x) else None
            return method(x.to(prep.device), explained.to(prep.device), c).attr

        return AttrBatch(x=prep.errors.x[pos].to(prep.device),
                         attr=torch.from_numpy(np.stack([r["artifact"] for r in records])).to(prep.device),
                         explained=torch.tensor([r["explained"] for r in records]).to(prep.device),
                         seconds=torch.tensor([r["seconds"] for r in records], dtype=torch.float64),
                         contrast=dev_contrast, method=name, explain_fn=explain_fn)

    return make


def run(prep, progress: bool = True) -> list[Path]:
    """Explain, score and aggregate every configured method and target mode."""
    t0 = time.perf_counter()
    cfg = prep.cfg.attributions
    names = list(cfg.metrics) or ATTR_METRICS.names()
    metric_fns = [ATTR_METRICS.get(n) for n in names]
    rows, entries, failed = [], [], []
    for name in cfg.methods:
        try:
            _run_method(prep, name, metric_fns, rows, entries, progress)
        except Exception as e:  # noqa: BLE001 - one method's crash must not abort the run
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            failed.append(dict(method=name, reason=reason))
            log.warning("attribution method %s failed and is left out: %s", name, reason)
    metas = [metric_meta(f) for f in metric_fns] + [leaderboard.MetricMeta(
        "seconds", False, False, "wall time of the method per instance (batch time / batch size)", "1")]
    return _write(prep, rows, entries, failed, metas, t0)


def _run_method(prep, name: str, metric_fns: list, rows: list, entries: list, progress: bool) -> None:
    """Explain, score and collect one method over every configured target mode."""
    cfg = prep.cfg.attributions
    cls = ATTRIBUTIONS.get(name)
    params = dict(cfg.params.get(name, {}))
    full = cls.param_dict(**params)
    method = cls(prep.oracle if cls.white_box else prep.oracle.black_box(), **params)
    method.fit(prep.data.train.x, prep.data.train.y)
    n_sub = prep.first_n(cfg.subset, name)
    indices = np.arange(n_sub)
    for mode in cfg.targets:
        key = prep.key(task="attribution", method=name, mode=mode, params=full, version=cls.version)
        prep.store.add_entry(key, "attribution", name, mode, cls.version, full, prep.context)
        _explain(prep, method, key, mode, indices, cfg.batch_size, progress)
        scores = score_entry(prep, key, indices, metric_fns, _batch_fn(prep, method, name), progress,
                             cfg.metric_params, cfg.metric_subset)
        scores["seconds"] = np.array([r["seconds"] for r in prep.store.records(key)])[:n_sub]
        rows.append(leaderboard.EntryScores(name, mode, cls.version, prep.errors.index[indices].numpy(),
                                            np.ones(n_sub, bool), scores, len(prep.errors),
                                            dict(cfg.metric_subset)))
        entries.append(dict(method=name, mode=mode, version=cls.version, params=full, entry_key=key,
                            n=n_sub, paper=getattr(cls, "paper", ""), deterministic=cls.deterministic,
                            metric_cost=metric_cost(prep.store, key)))


def _write(prep, rows: list, entries: list, failed: list, metas: list, t0: float) -> list[Path]:
    """Aggregate, sanity-check against the random control, draw, and write the files."""
    df = leaderboard.aggregate(rows, metas, prep.cfg.n_bootstrap, prep.cfg.seed, prep.errors.limited)
    sanity = sanity_against_control(rows)
    if sanity:
        df["beats_random"] = [sanity.get((r.method, r.mode), {}).get("beats", None) for r in rows]
        df["vs_random_p"] = [sanity.get((r.method, r.mode), {}).get("p", np.nan) for r in rows]
        _warn_failures(sanity)
    from bench.report import attribution_figures

    figures = attribution_figures(prep, entries, prep.out_dir)
    notes = (leaderboard_notes(prep, "attributions", figures) + _sanity_notes(sanity)
             + _subset_notes(prep.cfg.attributions)
             + [f"\n**Failed and left out:** {f['method']}: {f['reason']}" for f in failed])
    md = leaderboard.to_markdown(df, metas, f"Attributions: {prep.cfg.dataset} / {prep.out_dir.name}", notes)
    prov = provenance.build(prep, "attributions", entries, metas, time.perf_counter() - t0)
    prov["sanity_vs_random"] = {f"{m}/{mode}": v for (m, mode), v in sanity.items()}
    prov["metric_seconds_per_100"] = _cost_per_100(entries)
    prov["failed"] = failed
    instances = write_instances(prep.store, entries, prep.errors, prep.out_dir, "attributions", metas)
    return leaderboard.write(df, md, prov, prep.out_dir, "attributions") + figures + instances


def sanity_against_control(rows: list) -> dict:
    """Per (method, mode): does it beat the random control on deletion AUC (paired, p < 0.05)?"""
    control = {r.mode: r for r in rows if r.method == CONTROL and SANITY_METRIC in r.scores}
    out = {}
    for r in rows:
        c = control.get(r.mode)
        if c is None or r.method == CONTROL or SANITY_METRIC not in r.scores:
            continue
        common, ia, ib = np.intersect1d(r.index, c.index, return_indices=True)
        a, b = r.scores[SANITY_METRIC][ia], c.scores[SANITY_METRIC][ib]
        p = paired_pvalue(a, b)
        out[(r.method, r.mode)] = dict(beats=bool(np.nanmean(a) < np.nanmean(b) and p < 0.05), p=p,
                                       deletion=float(np.nanmean(a)), random=float(np.nanmean(b)))
    return out


def _warn_failures(sanity: dict) -> None:
    for (m, mode), v in sanity.items():
        if not v["beats"]:
            log.warning("%s (%s) is no better than the random control on %s (%.3f vs %.3f, p=%.3g)",
                        m, mode, SANITY_METRIC, v["deletion"], v["random"], v["p"])


def _sanity_notes(sanity: dict) -> list[str]:
    if not sanity:
        return []
    bad = [f"{m} ({mode})" for (m, mode), v in sanity.items() if not v["beats"]]
    return ["", f"Sanity: {len(sanity) - len(bad)} of {len(sanity)} method/mode rows beat the random control on "
            f"{SANITY_METRIC} (paired sign-flip test, p < 0.05)" + (f"; NOT: {', '.join(bad)}." if bad else ".")]


def _subset_notes(cfg) -> list[str]:
    if not cfg.metric_subset:
        return []
    parts = ", ".join(f"{m} on the first {n}" for m, n in sorted(cfg.metric_subset.items()))
    return ["", f"Costly re-explaining metrics ran on a fixed subset of the errors ({parts}); "
            "their CSV `<metric>_n` gives the count."]


def _cost_per_100(entries: list[dict]) -> dict:
    """Each metric's mean cost in seconds per 100 instances over all methods (from the store)."""
    total: dict[str, list[float]] = {}
    for e in entries:
        for m, c in e["metric_cost"].items():
            t = total.setdefault(m, [0, 0.0])
            t[0] += c["n"]
            t[1] += c["seconds"]
    return {m: round(100 * s / n, 3) for m, (n, s) in total.items() if n}
