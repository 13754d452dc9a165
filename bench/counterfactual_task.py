"""The counterfactual task: every configured solver on the error set -> store -> leaderboard."""

from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import numpy as np
import torch

from bench import leaderboard, provenance
from bench.api.metrics import CFBatch
from bench.api.oracle import Oracle
from bench.instances import write_instances
from bench.progress import bar as progress_bar
from bench.progress import live_queries
from bench.scoring import metric_cost, metric_meta, score_entry
from metrics import CF_METRICS
from solvers import SOLVERS

PLAUSIBILITY = ("knn_ratio", "im1", "im2", "oracle_agreement")


def _solve(prep, name: str, key: str, indices: np.ndarray, params: dict, progress: bool,
           oracle: Oracle | None = None) -> int:
    """Run solver `name` on the errors at positions `indices` not yet in the store; returns how many.

    `oracle` (default prep.oracle) lets a background thread count on its own oracle. Progress
    counts instances; while a batch runs, the bar shows the oracle's live query count.
    """
    errs, cfg = prep.errors, prep.cfg.counterfactuals
    oracle = oracle or prep.oracle
    done = prep.store.done_indices(key)
    todo = [i for i in indices if int(errs.index[i]) not in done]
    if not todo:
        return 0
    cls = SOLVERS.get(name)
    solver = cls(oracle if cls.white_box else oracle.black_box(), **params)
    bar = progress_bar(len(todo), f"cf {name}", progress=progress)
    oracle.on_rows = live_queries(bar)
    solver.fit(prep.data.train.x, prep.data.train.y)
    bs = 1 if cls.in_worker else cfg.batch_size  # a worker solver goes image by image anyway: show each
    try:
        for start in range(0, len(todo), bs):
            pos = torch.tensor(todo[start:start + bs])
            x, target = errs.x[pos].to(prep.device), errs.true[pos].to(prep.device)
            oracle.start(len(pos))
            t0 = time.perf_counter()
            result = solver(x, target)
            seconds = [(time.perf_counter() - t0) / len(pos)] * len(pos)
            _check_contract(name, result, x)
            per_row = result.info.get("seconds")  # solvers that work one image at a time time each row
            if isinstance(per_row, list) and len(per_row) == len(pos):
                seconds = [float(s) for s in per_row]
            prep.store.add_records(key, [
                dict(test_index=int(errs.index[p]), success=bool(result.success[j]), reason=result.reason[j],
                     queries=float(oracle.queries[j]), grad_queries=float(oracle.grad_queries[j]),
                     seconds=seconds[j], explained=int(errs.true[p]), contrast=None,
                     artifact=result.x_cf[j].detach().cpu().numpy())
                for j, p in enumerate(pos.tolist())])
            bar.update(len(pos))
    finally:
        oracle.on_rows = None
        oracle.start(0)
        bar.close()
        if hasattr(solver, "close"):
            solver.close()
    return len(todo)


def _entry(prep, name: str) -> tuple[str, dict, dict, int]:
    """(store key, given params, full params, first n errors) of solver `name` in this run."""
    cfg = prep.cfg.counterfactuals
    cls = SOLVERS.get(name)
    params = dict(cfg.params.get(name, {}))
    full = cls.param_dict(**params)
    key = prep.key(task="counterfactual", method=name, params=full, version=cls.version)
    return key, params, full, prep.first_n(cfg.subset, name)


def solve(prep, names: list[str], progress: bool = True, oracle: Oracle | None = None) -> None:
    """Solve (what the store lacks of) each named solver; counts go to prep.solved_now."""
    for name in names:
        key, params, full, n_sub = _entry(prep, name)
        cls = SOLVERS.get(name)
        prep.store.add_entry(key, "counterfactual", name, "", cls.version, full, prep.context)
        n = _solve(prep, name, key, np.arange(n_sub), params, progress, oracle)
        prep.solved_now[name] = prep.solved_now.get(name, 0) + n


class Background:
    """Solvers that run in a worker process (alibi), solved in a thread beside the rest of the run.

    The thread counts on its own oracle over a copy of the model, so no hook a white-box
    method puts on the model (captum) sees its rows, and no counter is shared. `join`
    re-raises whatever the thread raised.
    """

    def __init__(self, prep, names: list[str], progress: bool) -> None:
        self.names, self.error = names, None
        oracle = Oracle(copy.deepcopy(prep.model), prep.device)
        self.thread = threading.Thread(target=self._run, args=(prep, names, progress, oracle),
                                       name="bench-cf-background", daemon=True)
        self.thread.start()

    def _run(self, prep, names, progress, oracle) -> None:
        # One intra-op thread here (OpenMP's setting is per calling thread): the worker's
        # requests are mostly single rows, and a second thread team would only fight the
        # main thread's for the cores.
        torch.set_num_threads(1)
        try:
            solve(prep, names, progress, oracle)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread by join()
            self.error = e

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def in_worker(name: str) -> bool:
    """Does solver `name` spend its time in a worker process (so it can run beside other work)?"""
    return SOLVERS.get(name).in_worker


def start_background(prep, progress: bool = True) -> Background | None:
    """Start the configured in-worker solvers in a background thread (None when there are none)."""
    names = [n for n in prep.cfg.counterfactuals.solvers if in_worker(n)]
    return Background(prep, names, progress) if names else None


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
    """Solve (what is not solved yet), score and aggregate every configured solver; write the files."""
    t0 = time.perf_counter()
    cfg = prep.cfg.counterfactuals
    names = list(cfg.metrics) or CF_METRICS.names()
    metric_fns = [CF_METRICS.get(n) for n in names]
    solve(prep, list(cfg.solvers), progress)
    rows, entries = [], []
    for name in cfg.solvers:
        cls = SOLVERS.get(name)
        key, _, full, n_sub = _entry(prep, name)
        indices = np.arange(n_sub)
        scores = score_entry(prep, key, indices, metric_fns, lambda recs: make_batch(prep, recs), progress)
        valid = scores["validity"] > 0.5 if "validity" in scores else np.ones(n_sub, bool)
        rows.append(leaderboard.EntryScores(name, "", cls.version, prep.errors.index[indices].numpy(),
                                            valid, scores, len(prep.errors)))
        entries.append(dict(method=name, version=cls.version, params=full, entry_key=key, n=n_sub,
                            solved_now=prep.solved_now.get(name, 0), in_background=name in prep.background,
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
    beside = [e["method"] for e in entries if e.get("in_background") and e["method"] in ratios]
    return dict(throughput=tp, seconds_over_forward_cost=ratios, timed_in_earlier_run=earlier,
                ran_beside_other_work=beside)


def model_cost_note(model_cost: dict) -> str:
    tp, ratios = model_cost["throughput"], model_cost["seconds_over_forward_cost"]
    text = (f"Model cost: the raw forward pass ran at {tp['rows_per_s']:,.0f} rows/s (batch {tp['batch_size']}) "
            f"in this run.")
    if ratios:
        text += (" Black-box solvers' seconds per instance over (queries per instance / that rate), "
                 "1.0 = no cost beyond the model's: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + ".")
    if model_cost.get("ran_beside_other_work"):
        text += (" " + ", ".join(model_cost["ran_beside_other_work"]) + " ran in a background thread beside the "
                 "attribution suite (its worker process is single-threaded): its seconds include that contention.")
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
