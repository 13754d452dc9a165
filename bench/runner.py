"""A plain `bench run`: one cell, run by the study driver under the local executor.

run(cfg) takes a validated config (the CLI and `bench.run` validate it, once), claims the run
store (a damaged store or a concurrent run on it is refused before any work) and the run's
folder (bench.folders), and hands the one cell to bench.study.driver.Driver with the local
executor: the same units (open the cell, explain each method, finish the cell) a study runs.
Worker-process solvers (alibi) produce their records in the executor's lane beside the rest.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("bench")


def run(cfg, progress: bool = True) -> dict:
    """The whole job for a validated `cfg`; returns a summary with the written paths.

    Summary: folder, paths, n_errors, checkpoints (what the boards came from), phases (seconds
    each kind of unit ran; the lane's units overlap the others), test_accuracy, seconds.
    """
    from bench.folders import board_label, discard_if_empty, mark_complete, model_label, out_dir
    from bench.progress import enabled
    from bench.store import Store
    from bench.study.cells import Cell
    from bench.study.driver import Driver
    from bench.study.executors import LocalExecutor

    started = time.perf_counter()
    store = Store(cfg.store_path).acquire()
    folder = ex = driver = None
    try:
        cell = Cell(cfg.dataset, model_label(cfg), cfg.seed, cfg)
        folder = out_dir(cfg, board_label(cfg))  # claimed now (exclusive mkdir), marked INCOMPLETE until done
        ex = LocalExecutor(threads=None, lane=True)
        driver = Driver([cell], {cell.key: folder}, ex, {cfg.store_path: store}, progress=progress and enabled(),
                        cell_json=False)
        driver.run()
    except BaseException:
        if folder is not None and not cfg.publish and (driver is None or not driver.opened):
            discard_if_empty(folder, cfg.out)  # refused before any work: leave no empty run folder behind
        raise
    finally:
        if ex is not None:
            ex.close()
        store.release()
    mark_complete(folder)
    done = driver.finished[cell.key]
    ctx, phases = done["ctx"], _phases(driver.timings)
    log.info("phases: %s", "; ".join(f"{k} {v:.0f} s" for k, v in phases.items()))
    return dict(folder=str(folder), paths=[str(p) for p in done["paths"]], n_errors=len(ctx.errors),
                checkpoints=done["checkpoints"], phases=phases, test_accuracy=ctx.model_meta.get("test_accuracy"),
                seconds=round(time.perf_counter() - started, 1))


def _phases(timings: list[dict]) -> dict:
    """Seconds per kind of unit: train, prepare, each task's explain units, write."""
    out: dict[str, float] = {}
    for t in timings:
        kind = t["kind"] if t["kind"] != "explain" else f"explain {t['unit'].split(':')[2]}s"
        out[kind] = round(out.get(kind, 0.0) + t["seconds"], 1)
    return out
