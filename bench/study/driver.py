"""The study driver: expand the grid, hand units to an executor, own the run stores, write the tables.

One loop for both executors. Cells start (up to the executor's `max_cells` at once): a cell
whose checkpoint is neither shipped nor cached gets a train unit; a trained cell is prepared
here (model, error set, store keys), its explain units that still have work are submitted,
and when the last of them is back its leaderboards are written here. Results of remote units
are replayed into the store by this process only. Then the study table of each dataset.
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
    started: float = field(default_factory=time.perf_counter)
    ctx: object = None
    shared: dict = field(default_factory=dict)
    pending: set = field(default_factory=set)


class _Driver:
    def __init__(self, cfg, cells: list[Cell], folders: dict, executor, stores: dict, progress: bool) -> None:
        from bench.progress import bar

        self.cfg, self.cells, self.folders, self.ex, self.stores = cfg, cells, folders, executor, stores
        self.progress, self.timings, self.failed = progress, [], []
        self.bar = bar(0, f"study {executor.name}", unit="unit", progress=progress)

    def data(self, dataset: str, cfg):
        from bench.data import load_dataset

        return load_dataset(dataset, cfg.data_dir, cfg.cache_dir)  # cached per process

    def _submitted(self, n: int) -> None:
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def _done(self, unit_id: str, kind: str, seconds: float, where: str) -> None:
        self.timings.append(dict(unit=unit_id, kind=kind, seconds=round(seconds, 3), where=where))
        self.bar.update(1)

    def run(self) -> None:
        from bench.study.units import needs_training, train_unit

        queue, active, inflight = deque(self.cells), {}, {}
        while queue or inflight:
            while queue and len(active) < self.ex.max_cells:
                cell = queue.popleft()
                run = active[cell.key] = _CellRun(cell, self.folders[cell.dataset] / cell.name)
                if needs_training(cell):
                    self._submitted(1)
                    unit = train_unit(cell)
                    inflight[self.ex.submit_train(cell, self.data(cell.dataset, cell.cfg), self.progress)] = unit
                else:
                    self._open(run, inflight, active)
            if not inflight:
                continue
            handle, result, seconds = self.ex.next(list(inflight))
            unit = inflight.pop(handle)
            run = active[unit.cell]
            self._done(unit.id, unit.kind, seconds, self.ex.name)
            if unit.kind == "train":
                if isinstance(result, BaseException):
                    raise RuntimeError(f"training {unit.cell} failed: {type(result).__name__}: {result}") from result
                if result is not None:  # a worker's checkpoint: into this machine's cache
                    from bench.study.units import keep_checkpoint

                    keep_checkpoint(run.cell.cfg, result)
                self._open(run, inflight, active)
                continue
            if isinstance(result, BaseException):
                first = str(result).strip().splitlines()[-1][:200] if str(result).strip() else ""
                self.failed.append(dict(unit=unit.id, reason=f"{type(result).__name__}: {first}"))
                log.warning("%s failed (%s: %s); the cell's write step retries it in this process",
                            unit.id, type(result).__name__, first)
            else:
                self._keep(run, unit, result)
            run.pending.discard(unit.id)
            if not run.pending:
                self._write(run, active)

    def _open(self, run: _CellRun, inflight: dict, active: dict) -> None:
        """Prepare a trained cell here and submit its explain units (write it at once if it has none)."""
        from bench.study.units import explain_units, prepare_cell

        cell, t0 = run.cell, time.perf_counter()
        store = self.stores[cell.cfg.store_path]
        run.ctx = prepare_cell(cell, self.data(cell.dataset, cell.cfg), store, run.folder, self.progress)
        units = explain_units(run.ctx, cell, self.cfg.study.chunk)
        self.timings.append(dict(unit=f"prepare:{cell.key}", kind="prepare", seconds=round(time.perf_counter() - t0, 3),
                                 where="driver"))
        if units:
            run.shared = self.ex.share(run.ctx)
        self._submitted(len(units))
        for unit in units:
            run.pending.add(unit.id)
            inflight[self.ex.submit_explain(unit, run.ctx, run.shared, self.progress)] = unit
        if not units:
            self._write(run, active)

    def _keep(self, run: _CellRun, unit, result: dict) -> None:
        """Count what an explain unit made; a remote unit's records and scores go into the store here."""
        if result["added"] is not None:
            from bench.study.memstore import replay

            replay(run.ctx.store, result["added"])
        run.ctx.solved_now[unit.method] = run.ctx.solved_now.get(unit.method, 0) + result["n"]

    def _write(self, run: _CellRun, active: dict) -> None:
        from bench.study.units import write

        t0 = time.perf_counter()
        write(run.ctx, run.cell, run.started, progress=self.progress)
        self.timings.append(dict(unit=f"write:{run.cell.key}", kind="write", seconds=round(time.perf_counter() - t0, 3),
                                 where="driver"))
        active.pop(run.cell.key)
        log.info("study: %s written to %s", run.cell.key, run.folder)


def run_study(cfg, executor: str = "local", address: str | None = None, progress: bool = True) -> dict:
    """Run every unit of the study of `cfg` that still has work; write each cell's boards and the study table.

    Returns a summary: the study folders (per dataset), the cells, the unit timings, seconds.
    """
    from bench.progress import enabled
    from bench.publish import discard_if_empty, mark_complete, mark_incomplete, refuse_unpublishable
    from bench.store import Store
    from bench.study import table
    from bench.study.executors import make_executor
    from bench.study.cells import cells, roots
    from bench.validate import validate

    t0 = time.perf_counter()
    validate(cfg)
    refuse_unpublishable(cfg)
    grid = cells(cfg)
    datasets = list(dict.fromkeys(c.dataset for c in grid))
    folders = roots(cfg, datasets, create=True)
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
        mark_incomplete(f)  # removed when the study table is written
    progress = progress and enabled()
    stores: dict[Path, Store] = {}
    ex = None
    try:
        for c in grid:  # every store first: one that another run holds is refused before any work
            path = c.cfg.store_path
            if path not in stores:
                stores[path] = Store(path).acquire()
        ex = make_executor(executor, address, cfg.study.threads)
        driver = _Driver(cfg, grid, folders, ex, stores, progress)
        driver.run()
        driver.bar.close()
        info = ex.info()
    except BaseException:
        for f in folders.values():
            discard_if_empty(f)  # refused before any cell wrote: leave no empty study folder
        raise
    finally:
        for s in stores.values():
            s.release()
        if ex is not None:
            ex.close()
    written = []
    for dataset, folder in folders.items():
        t1 = time.perf_counter()
        mine = [c for c in grid if c.dataset == dataset]
        written += table.write_study(cfg, dataset, mine, folder, dict(info, units=driver.timings, failed=driver.failed,
                                                                      wall_seconds=round(time.perf_counter() - t0, 2)))
        driver.timings.append(dict(unit=f"table:{dataset}", kind="table", seconds=round(time.perf_counter() - t1, 3),
                                   where="driver"))
    for f in folders.values():
        mark_complete(f)
    return dict(folders={d: str(f) for d, f in folders.items()}, cells=[c.key for c in grid], paths=[str(p) for p in written],
                units=driver.timings, failed=driver.failed, executor=info, seconds=round(time.perf_counter() - t0, 1))
