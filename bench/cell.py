"""A cell's run, opened once and finished once: a plain `bench run` is one cell, a study many.

open_cell(cfg, data, store, folder) loads or trains the classifier, collects its errors, builds
the RunContext (store keys, metric services, oracle) and records the run in the store;
finish_cell(ctx, cell) writes the cell's boards from the stored scores (each task's leaderboard,
figures and per-instance files), the error manifest, pins the weights of a published board,
writes `cell.json` for a study's cell, and records how the run ended. Between the two, the
study driver (bench/study/driver.py) has an executor run the cell's explain units.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch

from bench.context import RunContext, metric_context
from bench.contract.oracle import Oracle
from bench.error_set import collect_errors


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA device is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r} (auto | cpu | cuda[:N])")
    return torch.device(name)


def open_cell(cfg, data, store, folder: Path, progress: bool = False) -> RunContext:
    """The cell's RunContext (model loaded or trained, errors collected), its run recorded in `store`."""
    from bench.models.train import load_or_train
    from bench.progress import enabled

    device = resolve_device(cfg.device)
    mask = getattr(data.test, "mask", None)
    refuse_mask_metrics(cfg, mask is not None)  # before any training
    torch.manual_seed(cfg.seed)
    model, meta = load_or_train(cfg, data, device, progress=progress)
    oracle = Oracle(model, device)
    common = None
    if cfg.rows == "common":
        from bench.data.common import indices

        common = indices(cfg.dataset)
    errors = collect_errors(oracle, data.test.x, data.test.y, meta["weights_sha256"], cfg.limit, mask, cfg.rows,
                            cfg.n_correct, common)
    if len(errors) == 0:
        where = f"the IDX files in {cfg.data_dir}" if cfg.data_dir else f"the shipped {cfg.dataset} copy"
        raise ValueError(f"the model misclassifies none of the {len(data.test.y)} test images ({where}): "
                         "there are no errors to explain; use a larger test set or another model")
    ctx = _context(cfg, device, data, model, meta, errors, store, folder, progress and enabled(), oracle)
    ctx.run_id = store.start_run(folder, cfg.to_dict(), len(errors))  # `bench runs` lists it from now on
    return ctx


def refuse_mask_metrics(cfg, has_mask: bool) -> None:
    """A ValueError naming the metrics that need a ground-truth mask when the dataset has none."""
    from bench.tasks.for_run import missing_mask

    if not has_mask and (msg := missing_mask(cfg)):
        raise ValueError(msg)


def _context(cfg, device, data, model, meta, errors, store, folder, progress, oracle=None) -> RunContext:
    key_parts = dict(dataset=cfg.dataset, model=cfg.model, weights=meta["weights_sha256"],
                     manifest=errors.manifest_hash, seed=cfg.seed)  # what every store key of the cell shares
    mctx = metric_context(data, Oracle(model, device), device, cache_dir=cfg.cache_dir, seed=cfg.seed,
                          dataset=cfg.dataset, model_name=cfg.model, use_reference=not cfg.retrain, progress=progress,
                          model_sha256=meta["weights_sha256"])
    return RunContext(cfg, device, data, model, meta, oracle or Oracle(model, device), errors, store, folder,
                      key_parts, mctx)


def worker_context(cfg, weights: bytes, meta: dict, errors, store, data) -> RunContext:
    """A cell's context rebuilt in a (Ray) worker from the weights' bytes: its own oracle, the given store."""
    from bench.models import MODELS
    from bench.plugins import load_plugins

    load_plugins(cfg.plugins)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = MODELS.get(cfg.model)(n_classes=len(data.classes), **cfg.model_params)
    model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    model.to(device).eval()
    return _context(cfg, device, data, model, meta, errors, store, None, False)


def state_bytes(model: torch.nn.Module) -> bytes:
    """The model's state dict as bytes (what a Ray worker gets instead of a checkpoint file)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def finish_cell(ctx: RunContext, cell=None, failed: dict | None = None, progress: bool = False) -> dict:
    """Write the cell's boards, manifest, pinned weights (published boards) and, for a study's cell, cell.json.

    `failed`: (task kind, method) -> why its explain unit failed here; the method is left out of
    its table with that reason instead of being run again. Returns what the run summary needs:
    the written paths and the checkpoints the boards came from.
    """
    from bench import publish
    from bench.pipeline import run_task
    from bench.tasks.for_run import tasks

    written: list[Path] = []
    try:
        for task in tasks(ctx):
            written += run_task(ctx, task, progress, failed or {})
        written.append(publish.write_manifest(ctx.errors, ctx.out_dir))
        used = publish.used_checkpoints(ctx)
        if ctx.cfg.publish and (ctx.cfg.study is None or ctx.cfg.study.pin_weights):
            written += publish.pin_weights(used)
        if cell is not None:
            written.append(_cell_summary(ctx, cell, used))
    finally:
        end_run(ctx, getattr(sys.exc_info()[0], "__name__", "done"))
    return dict(paths=written, checkpoints=used)


def end_run(ctx: RunContext, status: str) -> None:
    """Record in the store how the cell's run ended ("done", or the exception's name); once."""
    import logging

    from bench.store import StoreError

    if ctx.run_id is None:
        return
    run_id, ctx.run_id = ctx.run_id, None
    try:
        ctx.store.finish_run(run_id, status)
    except StoreError as e:  # e.g. the disk is full: the run's own error is the one to report
        if status == "done":
            raise
        logging.getLogger("bench").warning("%s", e)


def _cell_summary(ctx: RunContext, cell, used: list[dict]) -> Path:
    """cell.json: what the study table reads about the cell besides its leaderboards."""
    import json

    from bench import atomic, board
    from bench.study import resume

    meta, folder = ctx.model_meta, ctx.out_dir
    cf = board.COUNTERFACTUALS.json(folder)
    if cf.exists():  # the forward throughput the counterfactual board recorded
        throughput = json.loads(cf.read_text())["model_cost"]["throughput"]
    else:
        throughput = ctx.oracle.throughput(ctx.errors.x)
    errs = ctx.errors
    n_errors = len(errs) if errs.rows == "errors" else round((1 - meta["test_accuracy"]) * errs.n_test)
    training = {k: meta[k] for k in ("steps", "epochs", "stop", "best_step", "train_cpu_seconds") if k in meta}
    summary = dict(dataset=cell.dataset, label=cell.label, seed=cell.seed, model=ctx.cfg.model,
                   model_params=ctx.cfg.model_params, train=ctx.cfg.to_dict()["train"],
                   n_params=int(sum(p.numel() for p in ctx.model.parameters())),
                   train_seconds=meta.get("train_seconds"), test_accuracy=meta.get("test_accuracy"),
                   val_accuracy=meta.get("val_accuracy"), n_errors=n_errors, n_test=ctx.errors.n_test,
                   **({} if errs.rows == "errors" else dict(rows=errs.rows, n_rows=len(errs),
                                                            n_wrong_rows=int((errs.pred != errs.true).sum()))),
                   **training,
                   limited=ctx.errors.limited, rows_per_s=throughput["rows_per_s"],
                   weights_sha256=meta["weights_sha256"], manifest_sha256=ctx.errors.manifest_hash,
                   checkpoint=dict(relpath=meta.get("relpath"), source=meta.get("source")),
                   solved_now=dict(ctx.solved_now), checkpoints=len(used), identity=resume.identity(ctx.cfg))
    return atomic.write_json(folder / "cell.json", summary)
