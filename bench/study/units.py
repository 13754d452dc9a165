"""A study's work units and the functions that do them, whichever executor calls them.

    train   (cell)                         the cell's classifier: bench.models.train.load_or_train
                                           (keyed checkpoint, file lock, cached: done once)
    explain (cell, task, method, chunk)    one method on error positions [start, stop) of one cell,
                                           every target mode: produce the records the store lacks,
                                           then score them (bench.pipeline.produce, bench.scoring)
    write   (cell)                         aggregate the stored scores, write the cell's leaderboards
                                           (bench.pipeline.run_task; nothing left to produce or score)
    table   (study)                        the study table, its figure and meta-evaluation

An explain unit depends on its cell's train unit (its store keys hash the weights and the error
manifest); write on all of its cell's explain units; table on every write. Each explain unit
binds its method afresh and seeds torch's global generator with the cell's seed, so what it
computes never depends on which units ran before it or where. With `study.chunk` unset a cell
has one explain unit per method, which computes exactly what a plain `bench run` does.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.contract.oracle import Oracle
from bench.context import RunContext, method_seeds, metric_context
from bench.error_set import collect_errors
from bench.pipeline import Bound, entries, produce, run_task
from bench.scoring import score_entry
from bench.study.cells import Cell

KINDS = ("train", "explain", "write", "table")


@dataclass(frozen=True)
class Unit:
    """One unit of work: `kind`, its cell, what makes it idempotent (`key`) and what it waits for."""

    kind: str
    cell: str  # the cell's key ("mnist/cnn-seed0"); "" for the study table
    key: str  # train: checkpoint relpath; explain: its entry keys and chunk; write: the cell folder
    deps: tuple[str, ...] = ()
    task: str = ""  # explain: "attribution" | "counterfactual"
    method: str = ""
    start: int = 0
    stop: int = 0

    @property
    def id(self) -> str:
        if self.kind == "explain":
            return f"explain:{self.cell}:{self.task}:{self.method}:{self.start}-{self.stop}"
        return f"{self.kind}:{self.cell}"


def tasks(ctx: RunContext) -> list:
    """The cell's tasks that have methods: attributions, then counterfactuals."""
    from bench.tasks.attributions import AttributionTask
    from bench.tasks.counterfactuals import CounterfactualTask

    return [t for t in (AttributionTask(ctx), CounterfactualTask(ctx)) if t.names]


def task_of(ctx: RunContext, kind: str):
    return next(t for t in tasks(ctx) if t.kind == kind)


# -- train ----------------------------------------------------------------------------------
def train_unit(cell: Cell) -> Unit:
    from bench.models.train import checkpoint_relpath

    return Unit("train", cell.key, checkpoint_relpath(cell.cfg)[0])


def needs_training(cell: Cell) -> bool:
    """Whether the cell's checkpoint is neither shipped (reference weights) nor cached here."""
    from bench import checkpoints
    from bench.models.train import checkpoint_relpath

    path, source = checkpoints.locate(checkpoint_relpath(cell.cfg)[0], cell.cfg.cache_dir, not cell.cfg.retrain)
    return source == "cache" and not path.exists()


def train(cfg, data, device, progress: bool = False, ship: bool = False) -> dict | None:
    """Load or train the cell's classifier into the cache; with `ship`, return the checkpoint's files.

    A Ray worker ships them (relpath, the .pt bytes, the .json sidecar) so the driver's machine
    gets the same weights without a shared filesystem (bench.study.units.keep_checkpoint).
    """
    from bench.models.train import load_or_train

    _, meta = load_or_train(cfg, data, device, progress=progress)
    if not ship:
        return None
    path = Path(meta["checkpoint"])
    return dict(relpath=meta["relpath"], pt=path.read_bytes(), json=path.with_suffix(".json").read_text())


def keep_checkpoint(cfg, shipped: dict) -> Path:
    """Put a checkpoint a worker trained into this machine's cache (unless it is there already)."""
    from bench import atomic, checkpoints

    path = Path(cfg.cache_dir).expanduser() / shipped["relpath"]
    with checkpoints.lock(path):
        if not path.exists():
            atomic.write_bytes(path, shipped["pt"])
            atomic.write_text(path.with_suffix(".json"), shipped["json"])
    return path


# -- a cell's context ------------------------------------------------------------------------
def prepare_cell(cell: Cell, data, store, folder: Path | None, progress: bool = False) -> RunContext:
    """The cell's RunContext: as bench.runner.prepare builds it, with the study's data and store."""
    from bench.models.train import load_or_train
    from bench.runner import resolve_device

    cfg = cell.cfg
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model, meta = load_or_train(cfg, data, device, progress=progress)
    oracle = Oracle(model, device)
    errors = collect_errors(oracle, data.test.x, data.test.y, meta["weights_sha256"], cfg.limit)
    return _context(cfg, device, data, model, meta, errors, store, folder, progress, oracle)


def _context(cfg, device, data, model, meta, errors, store, folder, progress, oracle=None) -> RunContext:
    key_parts = dict(dataset=cfg.dataset, model=cfg.model, weights=meta["weights_sha256"],
                     manifest=errors.manifest_hash, seed=cfg.seed)  # as a plain run's: the same store keys
    mctx = metric_context(data, Oracle(model, device), device, cache_dir=cfg.cache_dir, seed=cfg.seed,
                          dataset=cfg.dataset, model_name=cfg.model, use_reference=not cfg.retrain, progress=progress,
                          model_sha256=meta["weights_sha256"])
    return RunContext(cfg, device, data, model, meta, oracle or Oracle(model, device), errors, store, folder,
                      key_parts, mctx)


def worker_context(cfg, weights: bytes, meta: dict, errors, store, data) -> RunContext:
    """A cell's context rebuilt in a worker from the weights' bytes: its own oracle, the given store."""
    from bench.models import MODELS
    from bench.plugins import load_plugins
    from bench.runner import resolve_device

    load_plugins(cfg.plugins)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = MODELS.get(cfg.model)(n_classes=len(data.classes), **cfg.model_params)
    model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    model.to(device).eval()
    return _context(cfg, device, data, model, meta, errors, store, None, False)


def state_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


# -- explain ---------------------------------------------------------------------------------
def explain_units(ctx: RunContext, cell: Cell, chunk: int | None) -> list[Unit]:
    """The cell's explain units that still have work (records or scores the store lacks).

    Registers the cell's entries in the store (the driver does; workers only report theirs).
    """
    out = []
    for task in tasks(ctx):
        fns = task.metric_fns()
        for name in task.names:
            ents = entries(ctx, task, name)
            n = max(e.n for e in ents)
            for start in range(0, n, chunk or max(n, 1)):
                stop = min(n, start + (chunk or n))
                if any(_pending(ctx, task, e, fns, start, stop) for e in ents):
                    key = "+".join(e.key for e in ents) + f"[{start}:{stop}]"
                    out.append(Unit("explain", cell.key, key, (f"train:{cell.key}",), task.kind, name, start, stop))
    return out


def _pending(ctx: RunContext, task, entry, fns: list, start: int, stop: int) -> bool:
    stop = min(stop, entry.n)
    wanted = {int(t) for t in ctx.errors.index[start:stop].tolist()}
    if wanted - ctx.store.done_indices(entry.key):
        return True
    cut = task.metric_subset(fns)
    for f in fns:
        scored_here = {int(t) for t in ctx.errors.index[start:min(stop, cut.get(f.metric_name, stop))].tolist()}
        if scored_here - ctx.store.scored_indices(entry.key, f.metric_name, f.version):
            return True
    return False


def explain(ctx: RunContext, kind: str, name: str, start: int, stop: int, progress: bool = False) -> int:
    """Run method `name` of task `kind` on error positions [start, stop), every mode; score what it made.

    Returns the records produced (0 when the store had them all).
    """
    task = task_of(ctx, kind)
    torch.manual_seed(ctx.cfg.seed)  # a unit never depends on what ran before it in this process
    cls = task.registry.get(name)
    bound = Bound(ctx, cls, method_seeds(cls, dict(task.cfg.params.get(name, {})), ctx.cfg.seed), ctx.oracle)
    fns, n_new = task.metric_fns(), 0
    cut = task.metric_subset(fns)
    try:
        for entry in entries(ctx, task, name):
            stop_e = min(stop, entry.n)
            if start >= stop_e:
                continue
            n_new += produce(ctx, task, entry, bound, progress, positions=range(start, stop_e))
            chunk_cut = {m: max(0, min(stop_e, n) - start) for m, n in cut.items()}  # the global first n
            score_entry(ctx, entry.key, np.arange(start, stop_e), fns,
                        lambda records, e=entry: task.make_batch(ctx, records, bound, e), progress,
                        task.metric_params(), chunk_cut)
    finally:
        bound.close()
    return n_new


# -- write -----------------------------------------------------------------------------------
def write(ctx: RunContext, cell: Cell, started: float, progress: bool = False) -> list[Path]:
    """The cell's leaderboards, figures, error manifest and `cell.json`, from the stored scores."""
    from bench import publish

    written: list[Path] = []
    status = "done"
    try:
        for task in tasks(ctx):
            written += run_task(ctx, task, progress)
        written.append(publish.write_manifest(ctx.errors, ctx.out_dir))
        used = publish.used_checkpoints(ctx)
        if ctx.cfg.publish and ctx.cfg.study.pin_weights:
            written += publish.pin_weights(used)
        written.append(_cell_summary(ctx, cell, used))
    except BaseException as e:
        status = type(e).__name__
        raise
    finally:
        ctx.store.add_run(time.perf_counter() - started, ctx.out_dir, ctx.cfg.to_dict(), len(ctx.errors), status)
    return written


def _cell_summary(ctx: RunContext, cell: Cell, used: list[dict]) -> Path:
    """cell.json: what the study table reads about the cell besides its leaderboards."""
    from bench import atomic

    meta, folder = ctx.model_meta, ctx.out_dir
    cf = folder / "counterfactuals.json"
    if cf.exists():  # the forward throughput the counterfactual board recorded
        throughput = json.loads(cf.read_text())["model_cost"]["throughput"]
    else:
        throughput = ctx.oracle.throughput(ctx.errors.x)
    summary = dict(dataset=cell.dataset, label=cell.label, seed=cell.seed, model=ctx.cfg.model,
                   model_params=ctx.cfg.model_params, train=ctx.cfg.to_dict()["train"],
                   n_params=int(sum(p.numel() for p in ctx.model.parameters())),
                   train_seconds=meta.get("train_seconds"), test_accuracy=meta.get("test_accuracy"),
                   val_accuracy=meta.get("val_accuracy"), n_errors=len(ctx.errors), n_test=ctx.errors.n_test,
                   limited=ctx.errors.limited, rows_per_s=throughput["rows_per_s"],
                   weights_sha256=meta["weights_sha256"], manifest_sha256=ctx.errors.manifest_hash,
                   checkpoint=dict(relpath=meta.get("relpath"), source=meta.get("source")),
                   solved_now=dict(ctx.solved_now), checkpoints=len(used))
    return atomic.write_json(folder / "cell.json", summary)
