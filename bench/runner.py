"""The runner: prepare a run's context, then run its two tasks through the pipeline.

prepare(cfg) validates the config and builds the typed RunContext (data, trained model, error
set, oracle, store, output folder); run(cfg) runs the counterfactual and attribution tasks
(bench/tasks/ through bench/pipeline.py), writes their leaderboards and figures, and returns a
summary. Solvers and metrics are known to the tasks only through the registries in bench.contract.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch

from bench.contract.oracle import Oracle
from bench.config import RunConfig
from bench.context import RunContext, metric_context
from bench.error_set import collect_errors
from bench.store import Store, StoreError
from bench.validate import validate

log = logging.getLogger("bench")


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r} (auto | cpu | cuda[:N])")
    return torch.device(name)


def prepare(cfg: RunConfig, progress: bool = True) -> RunContext:
    """Load data, load or train the model, collect its errors, open the store."""
    from bench.data import load_dataset
    from bench.models.train import load_or_train
    from bench.progress import enabled as progress_enabled
    from bench.publish import discard_if_empty, model_label, out_dir, refuse_unpublishable

    started = time.perf_counter()
    validate(cfg)  # every name and parameter, before any data or model is touched
    refuse_unpublishable(cfg)
    device = resolve_device(cfg.device)
    # The store first: a damaged store or a concurrent run on it is refused before any work.
    store = Store(cfg.store_path)
    store.acquire()
    folder = None
    try:
        folder = out_dir(cfg, model_label(cfg))  # claimed now (exclusive mkdir), marked INCOMPLETE until done
        torch.manual_seed(cfg.seed)
        data = load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir)
        model, meta = load_or_train(cfg, data, device, progress=progress)
        oracle = Oracle(model, device)
        errors = collect_errors(oracle, data.test.x, data.test.y, meta["weights_sha256"], cfg.limit)
        if len(errors) == 0:
            where = f"the IDX files in {cfg.data_dir}" if cfg.data_dir else f"the shipped {cfg.dataset} copy"
            raise ValueError(f"the model misclassifies none of the {len(data.test.y)} test images ({where}): "
                             "there are no errors to explain; use a larger test set or another model")
    except BaseException:
        store.release()
        if folder is not None and not cfg.publish:
            discard_if_empty(folder, cfg.out)  # refused before any table: leave no empty run folder behind
        raise
    key_parts = dict(dataset=cfg.dataset, model=cfg.model, weights=meta["weights_sha256"],
                     manifest=errors.manifest_hash, seed=cfg.seed)
    mctx = metric_context(data, Oracle(model, device), device, cache_dir=cfg.cache_dir, seed=cfg.seed,
                          dataset=cfg.dataset, model_name=cfg.model, use_reference=not cfg.retrain,
                          progress=progress and progress_enabled(), model_sha256=meta["weights_sha256"])
    return RunContext(cfg, device, data, model, meta, oracle, errors, store, folder, key_parts, mctx, started)


class Phases:
    """Wall time of a run's phases, in order (logged at the end and returned in the summary)."""

    def __init__(self, started: float) -> None:
        self.last, self.seconds = started, {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 1)
        self.last = now

    def __str__(self) -> str:
        return "; ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())


def run(cfg: RunConfig, progress: bool = True) -> dict:
    """The whole job: prepare, counterfactuals, attributions; returns a summary with the written paths."""
    from bench import publish
    from bench.pipeline import Background, produce_only, run_task
    from bench.tasks.attributions import AttributionTask
    from bench.tasks.counterfactuals import CounterfactualTask

    ctx = prepare(cfg, progress)
    try:
        run_id = ctx.store.start_run(ctx.out_dir, cfg.to_dict(), len(ctx.errors))  # `bench runs` lists it now
    except BaseException:
        ctx.store.release()
        raise
    cf, attr = CounterfactualTask(ctx), AttributionTask(ctx)
    written: list[Path] = []
    phases = Phases(ctx.started)
    phases.mark("prepare (data, model, errors)")
    try:
        # Worker-process solvers (alibi: single-threaded TensorFlow, mostly waiting on its pipe)
        # run in a thread beside everything else; their tables are written once they are done.
        # In-process solvers first (Growing Spheres wants both cores), then the worker solvers
        # start beside the attribution suite. Only worker solvers: an in-process method that
        # seeds or draws from torch's global generator (alibi_rl) would race the captum
        # methods that draw from it (measured: DeepSHAP's and GradientSHAP's cells moved).
        bg = None
        if cfg.counterfactuals.overlap:
            produce_only(ctx, cf, [n for n in cf.names if not cf.registry.get(n).in_worker], progress)
            phases.mark("counterfactual solvers in this process")
            worker = [n for n in cf.names if cf.registry.get(n).in_worker]
            if worker:
                bg = Background(ctx, cf, worker, progress)
                ctx.background.update(worker)
        try:
            if attr.names:
                written += run_task(ctx, attr, progress)
                phases.mark("attributions (explain, score, write)")
        finally:
            if bg is not None:
                bg.join()
                phases.mark(f"waiting for {', '.join(bg.names)}")
        if cf.names:
            written += run_task(ctx, cf, progress)
            phases.mark("counterfactuals (solve the rest, score, write)")
        written.append(publish.write_manifest(ctx.errors, ctx.out_dir))
        used = publish.used_checkpoints(ctx)
        if cfg.publish:
            written += publish.pin_weights(used)
        publish.mark_complete(ctx.out_dir)
    finally:
        ctx.store.release()
        status = getattr(sys.exc_info()[0], "__name__", "done")
        try:
            ctx.store.finish_run(run_id, status)  # listed by `bench runs`
        except StoreError as e:  # e.g. the disk is full: the run's own error is the one to report
            if status == "done":
                raise
            log.warning("%s", e)
    log.info("phases: %s", phases)
    return dict(folder=str(ctx.out_dir), paths=[str(p) for p in written], n_errors=len(ctx.errors),
                checkpoints=used, phases=phases.seconds,
                test_accuracy=ctx.model_meta.get("test_accuracy"),
                seconds=round(time.perf_counter() - ctx.started, 1))
