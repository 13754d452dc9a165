"""A cell's work units and the functions that do them, whichever executor calls them.

    train   (cell)                         the cell's classifier: bench.models.train.load_or_train
                                           (keyed checkpoint, file lock, cached: done once)
    explain (cell, task, method, chunk)    one method on error positions [start, stop) of one cell,
                                           every target mode: produce the records the store lacks,
                                           then score them (bench.pipeline.produce, bench.scoring)

Between them the driver opens the cell (bench.cell.open_cell), and after the last explain
unit it finishes it (bench.cell.finish_cell: aggregate the stored scores, write the boards).
An explain unit runs after its cell's train unit (its store keys hash the weights and the error
manifest). Each binds its method afresh and seeds torch's global generator with the cell's seed,
so what it computes never depends on which units ran before it or where; with `study.chunk`
unset a cell has one explain unit per method. A plain `bench run` is one cell run this way.
The local executor may `produce` a worker-process method's records in its lane (a thread) and
`explain` (then only scoring) it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench import board
from bench.context import RunContext
from bench.contract.oracle import Oracle
from bench.pipeline import bind, entries, produce
from bench.scoring import score_entry
from bench.study.cells import Cell
from bench.tasks.for_run import task_of, tasks


@dataclass(frozen=True)
class Unit:
    """One unit of work: `kind` ("train" | "explain"), its cell, and what makes it idempotent (`key`)."""

    kind: str
    cell: str  # the cell's key ("mnist/cnn-seed0")
    key: str  # train: checkpoint relpath; explain: its entry keys and chunk
    task: str = ""  # explain: its task's kind (bench.board: "attribution" | "counterfactual")
    method: str = ""
    start: int = 0
    stop: int = 0

    @property
    def id(self) -> str:
        if self.kind == "explain":
            return f"explain:{self.cell}:{self.task}:{self.method}:{self.start}-{self.stop}"
        return f"{self.kind}:{self.cell}"


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


# -- explain ---------------------------------------------------------------------------------
def explain_units(ctx: RunContext, cell: Cell, chunk: int | None) -> list[Unit]:
    """The cell's explain units that still have work (records or scores the store lacks).

    In the order a local executor runs them: counterfactual solvers that work in this process
    (Growing Spheres wants every core), then those that work in a worker process (the local
    executor's lane overlaps them with what follows), then the attribution methods.
    Registers the cell's entries in the store (the driver does; workers only report theirs).
    """
    out = []
    for task in sorted(tasks(ctx), key=lambda t: t.table is not board.COUNTERFACTUALS):
        fns = task.metric_fns()
        names = sorted(task.names, key=lambda n: bool(task.registry.get(n).in_worker))
        for name in names:
            ents = entries(ctx, task, name)
            n = max(e.n for e in ents)
            for start in range(0, n, chunk or max(n, 1)):
                stop = min(n, start + (chunk or n))
                if any(_pending(ctx, task, e, fns, start, stop) for e in ents):
                    key = "+".join(e.key for e in ents) + f"[{start}:{stop}]"
                    out.append(Unit("explain", cell.key, key, task.table.kind, name, start, stop))
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
    torch.manual_seed(ctx.cfg.seed)  # a unit never depends on what ran before it in this process
    return _unit(ctx, kind, name, start, stop, progress, ctx.oracle, score=True)


def produce_only(ctx: RunContext, kind: str, name: str, start: int, stop: int, oracle: Oracle,
                 progress: bool = False) -> int:
    """The records of method `name` on error positions [start, stop) the store lacks, produced on `oracle`.

    The local executor's lane runs this in a thread beside the main one: it neither seeds nor
    draws from torch's global generator (the method works in its own process) and counts on its
    own oracle. The unit's `explain` then finds the records made and only scores them.
    """
    return _unit(ctx, kind, name, start, stop, progress, oracle, score=False)


def _unit(ctx: RunContext, kind: str, name: str, start: int, stop: int, progress: bool, oracle: Oracle,
          score: bool) -> int:
    task = task_of(ctx, kind)
    bound, n_new = bind(ctx, task, name, oracle), 0
    fns = task.metric_fns() if score else []
    cut = task.metric_subset(fns)
    try:
        for entry in entries(ctx, task, name):
            stop_e = min(stop, entry.n)
            if start >= stop_e:
                continue
            n_new += produce(ctx, task, entry, bound, progress, positions=range(start, stop_e))
            if score:
                chunk_cut = {m: max(0, min(stop_e, n) - start) for m, n in cut.items()}  # the global first n
                score_entry(ctx, entry.key, np.arange(start, stop_e), fns,
                            lambda records, e=entry: task.make_batch(ctx, records, bound, e), progress,
                            task.metric_params(), chunk_cut)
    finally:
        bound.close()
    return n_new
