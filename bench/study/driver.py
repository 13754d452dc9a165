"""The driver: run cells' units on an executor, own the run stores, open and finish each cell.

One loop for a plain run (one cell, the local executor: bench.runner) and a study (a grid of
cells, the local or the Ray executor: run_study below). Cells start up to the executor's
`max_cells` at once: a cell whose checkpoint is neither shipped nor cached gets a train unit;
a trained cell is opened here (bench.cell.open_cell: model, error set, store keys), its explain
units that still have work are submitted, and when the last of them is back it is finished
here (bench.cell.finish_cell: its boards). Results of remote units are replayed into the store
by this process only. A study then writes the study table of each dataset.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from bench.study.cells import Cell

log = logging.getLogger("bench")


@dataclass
class _CellRun:
    cell: Cell
    folder: Path
    ctx: object = None
    shared: dict = field(default_factory=dict)
    pending: set = field(default_factory=set)
    failed: dict = field(default_factory=dict)  # (task kind, method) -> reason, for finish_cell


class Driver:
    """Runs `cells` (each into `folders[cell.key]`) on `executor`, with `stores` (path -> acquired Store).

    After `run`: `timings` (one per unit, prepare and finish included), `failed` (the units that
    failed), `finished` (cell key -> finish_cell's summary and the cell's context).
    """

    def __init__(self, cells: list[Cell], folders: dict, executor, stores: dict, chunk: int | None = None,
                 progress: bool = True, cell_json: bool = True) -> None:
        from bench.progress import bar

        self.cells, self.folders, self.ex, self.stores, self.chunk = cells, folders, executor, stores, chunk
        self.progress, self.cell_json, self.timings, self.failed, self.finished = progress, cell_json, [], [], {}
        self.opened = 0  # cells opened (their runs recorded in a store): work has begun
        self.bar = bar(0, f"study {executor.name}", unit="unit", progress=progress and cell_json)  # (a study's)

    def data(self, cfg):
        from bench.data import load_dataset

        return load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir)  # cached per process

    def timed(self, unit: str, kind: str, seconds: float, where: str = "driver") -> None:
        self.timings.append(dict(unit=unit, kind=kind, seconds=round(seconds, 3), where=where))

    def run(self) -> None:
        from bench.cell import end_run
        from bench.study.units import needs_training, train_unit

        queue, active, inflight = deque(self.cells), {}, {}
        try:
            while queue or inflight:
                while queue and len(active) < self.ex.max_cells:
                    cell = queue.popleft()
                    run = active[cell.key] = _CellRun(cell, self.folders[cell.key])
                    if needs_training(cell):
                        self._submitted(1)
                        inflight[self.ex.submit_train(cell, self.data(cell.cfg), self.progress)] = train_unit(cell)
                    else:
                        self._open(run, inflight, active)
                if inflight:
                    self._next(inflight, active)
        finally:
            self.bar.close()
            for run in active.values():  # interrupted or failed: say so in each open cell's run record
                if run.ctx is not None:
                    end_run(run.ctx, "interrupted")

    def _submitted(self, n: int) -> None:
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def _next(self, inflight: dict, active: dict) -> None:
        from bench.store import StoreError

        handle, result, seconds = self.ex.next(list(inflight))
        unit = inflight.pop(handle)
        run = active[unit.cell]
        self.timed(unit.id, unit.kind, seconds, self.ex.name)
        self.bar.update(1)
        if unit.kind == "train":
            if isinstance(result, BaseException):
                raise RuntimeError(f"training {unit.cell} failed: {type(result).__name__}: {result}") from result
            if result is not None:  # a worker's checkpoint: into this machine's cache
                from bench.study.units import keep_checkpoint

                keep_checkpoint(run.cell.cfg, result)
            self._open(run, inflight, active)
            return
        if isinstance(result, StoreError):  # the store (damaged, disk full) is the run's failure, not the method's
            raise result
        if isinstance(result, BaseException):
            first = str(result).strip().splitlines()[0][:200] if str(result).strip() else ""
            reason = f"{type(result).__name__}: {first}"[:300]
            self.failed.append(dict(unit=unit.id, reason=reason))
            if self.ex.retries_failed:
                log.warning("%s failed (%s); the cell's finish retries it in this process", unit.id, reason)
            else:
                run.failed[(unit.task, unit.method)] = reason
        else:
            self._keep(run, unit, result)
        run.pending.discard(unit.id)
        if not run.pending:
            self._finish(run, active)

    def _open(self, run: _CellRun, inflight: dict, active: dict) -> None:
        """Open a trained cell here and submit its explain units (finish it at once if it has none)."""
        from bench.cell import open_cell
        from bench.study.units import explain_units

        cell, t0 = run.cell, time.perf_counter()
        run.ctx = open_cell(cell.cfg, self.data(cell.cfg), self.stores[cell.cfg.store_path], run.folder, self.progress)
        self.opened += 1
        units = explain_units(run.ctx, cell, self.chunk)
        self.timed(f"prepare:{cell.key}", "prepare", time.perf_counter() - t0)
        if units:
            run.shared = self.ex.share(run.ctx)
        self._submitted(len(units))
        for unit in units:
            run.pending.add(unit.id)
            inflight[self.ex.submit_explain(unit, run.ctx, run.shared, self.progress)] = unit
        if not units:
            self._finish(run, active)

    def _keep(self, run: _CellRun, unit, result: dict) -> None:
        """Count what an explain unit made; a remote unit's records and scores go into the store here."""
        if result["added"] is not None:
            from bench.study.memstore import replay

            replay(run.ctx.store, result["added"])
        run.ctx.solved_now[unit.method] = run.ctx.solved_now.get(unit.method, 0) + result["n"]

    def _finish(self, run: _CellRun, active: dict) -> None:
        from bench.cell import finish_cell

        t0 = time.perf_counter()
        summary = finish_cell(run.ctx, run.cell if self.cell_json else None, run.failed, progress=self.progress)
        self.timed(f"write:{run.cell.key}", "write", time.perf_counter() - t0)
        self.finished[run.cell.key] = dict(summary, ctx=run.ctx)
        active.pop(run.cell.key)
        log.info("%s written to %s", run.cell.key, run.folder)


def run_study(cfg, executor: str = "local", address: str | None = None, progress: bool = True) -> dict:
    """Run every unit of the (validated) study of `cfg` that still has work; write each cell's boards and the table.

    Returns a summary: the study folders (per dataset), the cells, the unit timings, seconds.
    """
    from bench.folders import discard_if_empty, mark_complete, mark_incomplete, study_roots
    from bench.progress import enabled
    from bench.store import Store
    from bench.study.cells import cells
    from bench.study.executors import make_executor
    from bench.study.outputs import write_study

    t0 = time.perf_counter()
    grid = cells(cfg)
    datasets = list(dict.fromkeys(c.dataset for c in grid))
    roots = study_roots(cfg, datasets, create=True)
    kept = []
    if cfg.publish:  # published in sittings: a cell finished by an earlier one stays (bench.study.resume)
        from bench.study import resume

        kept = [c.key for c in grid if resume.finished(c.cfg, roots[c.dataset] / c.name)]
        if kept:
            log.info("%d of %d cells kept as an earlier sitting published them", len(kept), len(grid))
    todo = [c for c in grid if c.key not in kept]
    for f in roots.values():
        f.mkdir(parents=True, exist_ok=True)
        mark_incomplete(f)  # removed when the study table is written
    progress = progress and enabled()
    stores: dict[Path, Store] = {}
    ex = None
    try:
        for c in todo:  # every store first: one that another run holds is refused before any work
            if c.cfg.store_path not in stores:
                stores[c.cfg.store_path] = Store(c.cfg.store_path).acquire()
        ex = make_executor(executor, address, cfg.study.threads)
        driver = Driver(todo, {c.key: roots[c.dataset] / c.name for c in todo}, ex, stores, cfg.study.chunk, progress)
        driver.run()
        info = ex.info()
    except BaseException:
        for f in roots.values():
            discard_if_empty(f)  # refused before any cell wrote: leave no empty study folder
        raise
    finally:
        for s in stores.values():
            s.release()
        if ex is not None:
            ex.close()
    written = []
    for dataset, folder in roots.items():
        t1 = time.perf_counter()
        mine = [c for c in (_published(cfg, folder) if cfg.publish else grid) if c.dataset == dataset]
        written += write_study(cfg, dataset, mine, folder, dict(info, units=driver.timings, failed=driver.failed,
                                                                kept=[k for k in kept if k.startswith(dataset + "/")],
                                                                n_grid=len(cells(cfg, restrict=False)),
                                                                wall_seconds=round(time.perf_counter() - t0, 2)))
        driver.timed(f"table:{dataset}", "table", time.perf_counter() - t1)
    for f in roots.values():
        mark_complete(f)
    return dict(folders={d: str(f) for d, f in roots.items()}, cells=[c.key for c in grid], kept=kept, paths=[str(p) for p in written],
                units=driver.timings, failed=driver.failed, executor=info, seconds=round(time.perf_counter() - t0, 1))


def _published(cfg, folder: Path) -> list[Cell]:
    """Every cell of the whole grid (study.only aside) whose finished board from the same config is in `folder`:
    a sitting's study table covers what all sittings so far published."""
    from bench.study import resume
    from bench.study.cells import cells

    return [c for c in cells(cfg, restrict=False) if resume.finished(c.cfg, folder / c.name)]
