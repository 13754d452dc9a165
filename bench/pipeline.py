"""One task pipeline: pending work from the store -> method -> records -> scores -> aggregate -> write.

A `Task` (bench/tasks/) is the small strategy that differs between counterfactuals and
attributions: which registry, what a row explains, how a result becomes a stored artifact,
how stored records become a metric batch, and what the written leaderboard adds. Everything
else (entries and keys, resuming from the store, binding and fitting a method once and
counting what its fit cost, progress, scoring, aggregating, provenance, files) is here, once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import board, leaderboard, provenance
from bench.context import RunContext, method_seeds
from bench.contract.oracle import Oracle
from bench.instances import published, write_instances
from bench.progress import bar as progress_bar
from bench.progress import live_queries
from bench.scoring import metric_cost, metric_meta, score_entry
from bench.store import StoreError
from bench.tasks import FinishedEntry, Task

log = logging.getLogger("bench")


@dataclass
class Entry:
    """One leaderboard row's work: method `name` in target `mode` on the first `n` errors."""

    name: str
    mode: str
    cls: type
    params: dict  # as given in the config, plus the derived seed
    full: dict  # every parameter, defaults filled in (enters the store key)
    key: str
    n: int


class Bound:
    """A method bound to an oracle and fitted on first use; what fit() cost is recorded per entry."""

    def __init__(self, ctx: RunContext, cls: type, params: dict, oracle: Oracle) -> None:
        self.ctx, self.cls, self.params, self.oracle = ctx, cls, params, oracle
        self._method = None
        self.fit_cost: tuple[float, float] | None = None
        self.fit_info: dict | None = None

    def get(self):
        if self._method is None:
            m = self.cls(self.oracle if self.cls.white_box else self.oracle.black_box(), **self.params)
            m.ctx = self.ctx.metric_ctx
            self.oracle.start(0)
            t0 = time.perf_counter()
            m.fit(self.ctx.data.train.x, self.ctx.data.train.y)
            # a method that loaded a cached training reports what that training cost (`fit_cost`)
            self.fit_cost = getattr(m, "fit_cost", None) or (float(self.oracle.total_rows), time.perf_counter() - t0)
            self.fit_info = getattr(m, "fit_info", None)
            self._method = m
        return self._method

    def close(self) -> None:
        if self._method is not None and hasattr(self._method, "close"):
            self._method.close()


def bind(ctx: RunContext, task: Task, name: str, oracle: Oracle | None = None) -> Bound:
    """Method `name` of `task` bound (not yet fitted) to `oracle` (default the run's), with its derived seed."""
    cls = task.registry.get(name)
    return Bound(ctx, cls, method_seeds(cls, dict(task.cfg.params.get(name, {})), ctx.cfg.seed), oracle or ctx.oracle)


def entries(ctx: RunContext, task: Task, name: str) -> list[Entry]:
    """The entries (one per target mode) of method `name`, registered in the store."""
    cls = task.registry.get(name)
    params = method_seeds(cls, dict(task.cfg.params.get(name, {})), ctx.cfg.seed)
    full = cls.param_dict(**params)
    out = []
    for mode in task.modes:
        parts = dict(task=task.table.kind, method=name, params=full, version=cls.version)
        if mode:
            parts["mode"] = mode
        key = ctx.key(**parts)
        ctx.store.add_entry(key, task.table.kind, name, mode, cls.version, full, ctx.key_parts)
        out.append(Entry(name, mode, cls, params, full, key, ctx.first_n(task.cfg.subset, name)))
    return out


def produce(ctx: RunContext, task: Task, entry: Entry, bound: Bound, progress: bool, positions: range | None = None) -> int:
    """Run the method on the entry's errors the store lacks; returns how many it did.

    `positions`: only these error positions (a study's explain unit, one chunk); default all
    of the entry's. Progress counts instances; while a batch runs, the bar shows the oracle's
    live query count.
    """
    errs, oracle = ctx.errors, bound.oracle
    done = ctx.store.done_indices(entry.key)
    todo = [i for i in (range(entry.n) if positions is None else positions) if int(errs.index[i]) not in done]
    if not todo:
        return 0
    method = bound.get()
    if bound.fit_cost is not None:
        ctx.store.set_fit_cost(entry.key, *bound.fit_cost, info=bound.fit_info)
    bar = progress_bar(len(todo), f"{task.table.short} {entry.name}{'/' + entry.mode if entry.mode else ''}",
                       progress=progress)
    oracle.on_rows = live_queries(bar)
    bs = 1 if entry.cls.in_worker else task.cfg.batch_size  # a worker method goes image by image anyway
    try:
        for start in range(0, len(todo), bs):
            pos = torch.tensor(todo[start:start + bs])
            explained, contrast = task.targets(errs, entry.mode, pos)
            x = errs.x[pos].to(ctx.device)
            oracle.start(len(pos))
            t0 = time.perf_counter()
            out = task.call(method, x, explained.to(ctx.device),
                            None if contrast is None else contrast.to(ctx.device))
            seconds = out.seconds or [(time.perf_counter() - t0) / len(pos)] * len(pos)
            _check_contract(entry.name, out.artifact, x)
            ctx.store.add_records(entry.key, [
                dict(test_index=int(errs.index[p]), success=bool(out.success[j]), reason=out.reason[j],
                     queries=float(oracle.queries[j]), grad_queries=float(oracle.grad_queries[j]),
                     seconds=float(seconds[j]), explained=int(explained[j]),
                     contrast=None if contrast is None else int(contrast[j]),
                     artifact=out.artifact[j].detach().float().cpu().numpy())
                for j, p in enumerate(pos.tolist())])
            bar.update(len(pos))
    finally:
        oracle.on_rows = None
        oracle.start(0)
        bar.close()
    return len(todo)


def _check_contract(name: str, artifact: torch.Tensor, x: torch.Tensor) -> None:
    if artifact.shape != x.shape or artifact.device != x.device:
        raise TypeError(f"method {name!r} broke the contract: returned {tuple(artifact.shape)} on "
                        f"{artifact.device} for x {tuple(x.shape)} on {x.device}")


def run_task(ctx: RunContext, task: Task, progress: bool = True, failed_here: dict | None = None) -> list[Path]:
    """Produce and score what the store still lacks of every configured method of `task`; aggregate; write.

    One method's crash leaves it out of the table (named under it), never aborts the run.
    `failed_here`: (task kind, method) -> reason, for methods whose explain unit already failed
    in this process: left out with that reason, not run again.
    """
    t0 = time.perf_counter()
    metric_fns = task.metric_fns()
    done: list[FinishedEntry] = []
    failed = []
    for name in task.names:
        if (task.table.kind, name) in (failed_here or {}):
            failed.append(dict(method=name, reason=failed_here[(task.table.kind, name)]))
            continue
        try:
            done += _run_method(ctx, task, name, metric_fns, progress)
        except StoreError:  # the store (damaged, disk full) is the run's failure, not the method's: stop
            raise
        except Exception as e:  # noqa: BLE001 - one method's crash must not abort the run
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            failed.append(dict(method=name, reason=reason))
            log.warning("%s %s failed and is left out: %s", task.table.kind, name, reason)
    metas = [metric_meta(f) for f in metric_fns] + task.extra_metas()
    rows, records = [d.scores for d in done], [d.record for d in done]
    df = leaderboard.aggregate(rows, metas, ctx.cfg.n_bootstrap, ctx.cfg.seed, ctx.errors.limited)
    extra = task.finish(ctx, df, done)
    metric_prov = {}
    for f in metric_fns:  # what metrics built for themselves (trained models), by their own hook
        if f.provenance is not None:
            metric_prov.update(f.provenance(ctx.metric_ctx))
    notes = (leaderboard_notes(ctx, task.table.stem, extra.figures, extra.notes + task.provenance_notes(metric_prov))
             + [f"\n**Failed and left out:** {f['method']}: {f['reason']}" for f in failed])
    title = f"{task.table.title}: {ctx.cfg.dataset} / {ctx.out_dir.name}"
    md = leaderboard.to_markdown(extra.df, metas, title, notes + extra.stat_notes)
    prov = provenance.build(ctx, task.table.stem, records, metas, time.perf_counter() - t0)
    for d, m in zip(prov["metrics"], metas):
        d["kind"] = m.kind
    prov.update(extra.provenance, failed=failed, title=title, notes=notes, statistics=leaderboard.statistics_record(
        ctx.cfg.n_bootstrap, ctx.cfg.seed))
    prov.update(metric_prov)
    instances = write_instances(ctx.store, records, ctx.errors, ctx.out_dir, task.table.stem, metas)
    tables = [board.write_csv(df, ctx.out_dir / f"{stem}.csv") for stem, df in extra.tables.items()]
    return board.write(ctx.out_dir, task.table, extra.df, md, prov) + extra.figures + instances + tables


def _run_method(ctx: RunContext, task: Task, name: str, metric_fns: list, progress: bool) -> list[FinishedEntry]:
    """Produce, score and collect one method over every target mode."""
    bound = bind(ctx, task, name)
    cls, out = bound.cls, []
    try:
        for entry in entries(ctx, task, name):
            n_new = produce(ctx, task, entry, bound, progress)
            ctx.solved_now[name] = ctx.solved_now.get(name, 0) + n_new
            indices = np.arange(entry.n)
            scores = score_entry(ctx, entry.key, indices, metric_fns,
                                 lambda records, e=entry: task.make_batch(ctx, records, bound, e),
                                 progress, task.metric_params(), task.metric_subset(metric_fns))
            valid = task.valid(scores, entry.n)
            if "seconds" not in scores:  # attributions: the method's time (a counterfactual metric has it)
                scores["seconds"] = np.array([r["seconds"] for r in ctx.store.records(entry.key)])[:entry.n]
            scores = {k: published(v) for k, v in scores.items()}  # the numbers the instances CSV ships
            row = leaderboard.EntryScores(name, entry.mode, cls.version, ctx.errors.index[indices].numpy(),
                                          valid, scores, len(ctx.errors), task.metric_subset(metric_fns))
            fit, info = ctx.store.fit_cost(entry.key), ctx.store.fit_info(entry.key)
            out.append(FinishedEntry(row, dict(method=name, **({"mode": entry.mode} if entry.mode else {}), version=cls.version,
                             params=entry.full, entry_key=entry.key, n=entry.n,
                             **task.entry_info(ctx, entry), paper=getattr(cls, "paper", ""),
                             deterministic=cls.deterministic, metric_cost=metric_cost(ctx.store, entry.key),
                             **({} if fit is None else dict(fit_queries=fit[0], fit_seconds=round(fit[1], 3))),
                             **({} if info is None else dict(fit_info=info)))))
    finally:
        bound.close()
    return out


def leaderboard_notes(ctx: RunContext, stem: str, figures: list[Path], extra: list[str] = ()) -> list[str]:
    """Provenance lines, then `extra` lines, then figure links, printed under a leaderboard table."""
    e, m = ctx.errors, ctx.model_meta
    notes = [f"{'Errors' if e.rows == 'errors' else 'Rows'}: {e.describe()} "
             f"(model test accuracy {m.get('test_accuracy', float('nan')):.4f}); "
             f"manifest sha256 `{e.manifest_hash[:16]}`, weights sha256 `{m['weights_sha256'][:16]}`.",
             f"Reproduce: `{provenance.reproduce_command(ctx.cfg)}` (provenance in `{stem}.json`)."]
    if e.limited:
        notes.insert(0, "**NOT FOR PUBLICATION: --limit cut the error set.**")
    notes += [*extra, *(f"![{p.stem}]({p.name})" for p in figures)]
    return notes
