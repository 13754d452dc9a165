"""The counterfactual task: every configured solver on the error set -> store -> leaderboard."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bench import leaderboard, provenance
from bench.instances import write_instances
from bench.scoring import metric_cost, metric_meta, score_entry
from metrics import CF_METRICS
from metrics.base import CFBatch
from solvers import SOLVERS

PLAUSIBILITY = ("knn_ratio", "im1", "im2", "oracle_agreement")


def _solve(prep, name: str, key: str, indices: np.ndarray, params: dict, progress: bool) -> int:
    """Run solver `name` on the errors at positions `indices` not yet in the store; returns how many."""
    errs, cfg = prep.errors, prep.cfg.counterfactuals
    done = prep.store.done_indices(key)
    todo = [i for i in indices if int(errs.index[i]) not in done]
    if not todo:
        return 0
    cls = SOLVERS.get(name)
    oracle = prep.oracle if cls.white_box else prep.oracle.black_box()
    solver = cls(oracle, **params)
    solver.fit(prep.data.train.x, prep.data.train.y)
    bs = 1 if getattr(cls, "one_at_a_time", False) else cfg.batch_size
    try:
        for start in tqdm(range(0, len(todo), bs), desc=f"cf {name}", disable=not progress, leave=False):
            pos = torch.tensor(todo[start:start + bs])
            x, target = errs.x[pos].to(prep.device), errs.true[pos].to(prep.device)
            prep.oracle.start(len(pos))
            t0 = time.perf_counter()
            result = solver(x, target)
            seconds = [(time.perf_counter() - t0) / len(pos)] * len(pos)
            _check_contract(name, result, x)
            per_row = result.info.get("seconds")  # solvers that work one image at a time time each row
            if isinstance(per_row, list) and len(per_row) == len(pos):
                seconds = [float(s) for s in per_row]
            prep.store.add_records(key, [
                dict(test_index=int(errs.index[p]), success=bool(result.success[j]), reason=result.reason[j],
                     queries=float(prep.oracle.queries[j]), grad_queries=float(prep.oracle.grad_queries[j]),
                     seconds=seconds[j], explained=int(errs.true[p]), contrast=None,
                     artifact=result.x_cf[j].detach().cpu().numpy())
                for j, p in enumerate(pos.tolist())])
    finally:
        prep.oracle.start(0)
        if hasattr(solver, "close"):
            solver.close()
    return len(todo)


def _check_contract(name: str, result, x: torch.Tensor) -> None:
    xc = result.x_cf
    if xc.shape != x.shape or xc.dtype != x.dtype or xc.device != x.device:
        raise TypeError(f"solver {name!r} broke the contract: x_cf {tuple(xc.shape)} {xc.dtype} {xc.device} "
                        f"for x {tuple(x.shape)} {x.dtype} {x.device}")


def make_batch(prep, records: list[dict]) -> CFBatch:
    """Rebuild what the metrics need from stored records (probabilities via the metric oracle)."""
    pos = prep.errors.position(torch.tensor([r["test_index"] for r in records]))
    x_cf = torch.from_numpy(np.stack([r["artifact"] for r in records])).to(prep.device)
    probs = prep.metric_ctx.oracle.probs(x_cf)
    col = lambda k: torch.tensor([r[k] for r in records], dtype=torch.float64)  # noqa: E731
    return CFBatch(x=prep.errors.x[pos].to(prep.device), x_cf=x_cf, target=prep.errors.true[pos].to(prep.device),
                   probs_cf=probs, queries=col("queries"), grad_queries=col("grad_queries"),
                   seconds=col("seconds"), index=prep.errors.index[pos])


def run(prep, progress: bool = True) -> list[Path]:
    """Solve, score and aggregate every configured solver; write the leaderboard files."""
    t0 = time.perf_counter()
    cfg = prep.cfg.counterfactuals
    names = list(cfg.metrics) or CF_METRICS.names()
    metric_fns = [CF_METRICS.get(n) for n in names]
    rows, entries = [], []
    for name in cfg.solvers:
        cls = SOLVERS.get(name)
        params = dict(cfg.params.get(name, {}))
        full = cls.param_dict(**params)
        n_sub = prep.first_n(cfg.subset, name)
        indices = np.arange(n_sub)
        key = prep.key(task="counterfactual", method=name, params=full, version=cls.version)
        prep.store.add_entry(key, "counterfactual", name, "", cls.version, full, prep.context)
        solved_now = _solve(prep, name, key, indices, params, progress)
        scores = score_entry(prep, key, indices, metric_fns, lambda recs: make_batch(prep, recs), progress)
        valid = scores["validity"] > 0.5 if "validity" in scores else np.ones(n_sub, bool)
        rows.append(leaderboard.EntryScores(name, "", cls.version, prep.errors.index[indices].numpy(),
                                            valid, scores, len(prep.errors)))
        entries.append(dict(method=name, version=cls.version, params=full, entry_key=key, n=n_sub, solved_now=solved_now,
                            paper=getattr(cls, "paper", ""), deterministic=cls.deterministic,
                            metric_cost=metric_cost(prep.store, key)))
    metas = [metric_meta(f) for f in metric_fns]
    df = leaderboard.aggregate(rows, metas, prep.cfg.n_bootstrap, prep.cfg.seed, prep.errors.limited)
    from bench.report import counterfactual_figures

    figures = counterfactual_figures(prep, entries, prep.out_dir)
    model_cost = model_cost_ratios(prep, rows, entries)
    notes = leaderboard_notes(prep, "counterfactuals", figures, [model_cost_note(model_cost)])
    md = leaderboard.to_markdown(df, metas, f"Counterfactuals: {prep.cfg.dataset} / {prep.out_dir.name}", notes)
    prov = provenance.build(prep, "counterfactuals", entries, metas, time.perf_counter() - t0)
    prov["model_cost"] = model_cost
    if any(n in names for n in PLAUSIBILITY):
        from metrics.plausibility import plausibility_provenance

        prov["plausibility"] = plausibility_provenance(prep.metric_ctx)
    instances = write_instances(prep.store, entries, prep.errors, prep.out_dir, "counterfactuals", metas)
    return leaderboard.write(df, md, prov, prep.out_dir, "counterfactuals") + figures + instances


def model_cost_ratios(prep, rows: list, entries: list[dict]) -> dict:
    """The model's raw forward throughput in this run, and each black-box solver's time over it.

    ratio = mean seconds per instance / (mean queries per instance / raw rows per second):
    1.0 means the solver costs what its forward passes cost; white-box solvers also pay for
    backward passes, which a forward yardstick does not price, so they get no ratio.
    """
    tp = prep.oracle.throughput(prep.errors.x)
    ratios, earlier = {}, []
    for r, e in zip(rows, entries):
        if SOLVERS.get(e["method"]).white_box:
            continue
        if e["solved_now"] < e["n"]:  # resumed from the store: its seconds come from another run
            earlier.append(e["method"])
            continue
        sec, q = (float(np.nanmean(r.scores[k])) if k in r.scores else float("nan") for k in ("seconds", "queries"))
        if q > 0 and np.isfinite(sec):
            ratios[e["method"]] = round(sec / (q / tp["rows_per_s"]), 3)
    return dict(throughput=tp, seconds_over_forward_cost=ratios, timed_in_earlier_run=earlier)


def model_cost_note(model_cost: dict) -> str:
    tp, ratios = model_cost["throughput"], model_cost["seconds_over_forward_cost"]
    text = (f"Model cost: the raw forward pass ran at {tp['rows_per_s']:,.0f} rows/s (batch {tp['batch_size']}) "
            f"in this run.")
    if ratios:
        text += (" Black-box solvers' seconds per instance over (queries per instance / that rate), "
                 "1.0 = no cost beyond the model's: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + ".")
    if model_cost["timed_in_earlier_run"]:
        text += (" No ratio for " + ", ".join(model_cost["timed_in_earlier_run"])
                 + ": resumed from the store, timed in an earlier run.")
    return text


def leaderboard_notes(prep, stem: str, figures: list[Path], extra: list[str] = ()) -> list[str]:
    """Provenance lines, then `extra` lines, then figure links, printed under a leaderboard table."""
    e, m = prep.errors, prep.model_meta
    notes = [f"Errors: {len(e)} misclassified test images of {e.n_test} "
             f"(model test accuracy {m.get('test_accuracy', float('nan')):.4f}); "
             f"manifest sha256 `{e.manifest_hash[:16]}`, weights sha256 `{m['weights_sha256'][:16]}`.",
             f"Reproduce: `{provenance.command_line()}` (provenance in `{stem}.json`)."]
    if e.limited:
        notes.insert(0, "**NOT FOR PUBLICATION: --limit cut the error set.**")
    notes += [*extra, *(f"![{p.stem}]({p.name})" for p in figures)]
    return notes
