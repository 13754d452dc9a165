"""The runner: the only place that knows data, models, oracle, solvers, metrics and store.

prepare(cfg) builds the shared state (data, trained model, error set, oracle, store);
run(cfg) then runs the counterfactual and attribution tasks, writes their leaderboards and
figures, and returns where everything went.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.api.oracle import Oracle
from bench.config import RunConfig
from bench.errors import ErrorSet, collect_errors
from bench.store import Store, entry_key
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


@dataclass
class Prepared:
    """Everything the tasks share for one run."""

    cfg: RunConfig
    device: torch.device
    data: object
    model: torch.nn.Module
    model_meta: dict
    oracle: Oracle
    errors: ErrorSet
    store: Store
    out_dir: Path
    context: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    metric_ctx: object = None
    solved_now: dict = field(default_factory=dict)  # solver -> instances solved in this run
    background: set = field(default_factory=set)  # solvers solved in a background thread

    def key(self, **parts) -> str:
        return entry_key(context=self.context, **parts)

    def first_n(self, subset: dict, name: str) -> int:
        """How many errors (the first n) entry `name` runs on: subset[name], else subset["*"], else all."""
        n = len(self.errors)
        return min(int(subset.get(name, subset.get("*", n))), n)


def prepare(cfg: RunConfig, progress: bool = True) -> Prepared:
    """Load data, load or train the model, collect its errors, open the store."""
    from bench.api.metrics import MetricContext
    from bench.data import load_dataset
    from bench.models.train import load_or_train
    from bench.publish import out_dir, refuse_unpublishable

    started = time.perf_counter()
    validate(cfg)  # every name and parameter, before any data or model is touched
    refuse_unpublishable(cfg)
    device = resolve_device(cfg.device)
    # The store first: a damaged store or a concurrent run on it is refused before any work.
    store = Store(cfg.store or Path(cfg.cache_dir).expanduser() / "runs" / cfg.dataset / f"{cfg.model}.sqlite")
    store.acquire()
    try:
        torch.manual_seed(cfg.seed)
        data = load_dataset(cfg.dataset, cfg.data_dir)
        model, meta = load_or_train(cfg, data, device, progress=progress)
        oracle = Oracle(model, device)
        errors = collect_errors(oracle, data.test.x, data.test.y, meta["weights_sha256"], cfg.limit)
    except BaseException:
        store.release()
        raise
    context = dict(dataset=cfg.dataset, model=cfg.model, weights=meta["weights_sha256"],
                   manifest=errors.manifest_hash, seed=cfg.seed)
    folder = out_dir(cfg, _model_label(cfg))
    mctx = MetricContext(oracle=Oracle(model, device), data=data, device=device, cache_dir=cfg.cache_dir,
                         seed=cfg.seed, dataset=cfg.dataset, model_name=cfg.model,
                         use_reference=not cfg.retrain)
    return Prepared(cfg, device, data, model, meta, oracle, errors, store, folder, context, started, mctx)


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


def _model_label(cfg: RunConfig) -> str:
    """Folder name of a model: its registry name plus distinguishing params (e.g. cbam)."""
    extra = [str(v) for k, v in sorted(cfg.model_params.items()) if k in ("arch", "attn_layer")]
    return "-".join([cfg.model, *extra])


def run(cfg: RunConfig, progress: bool = True) -> dict:
    """The whole job: prepare, counterfactuals, attributions; returns the written paths."""
    from bench import attribution_task, counterfactual_task, publish

    prep = prepare(cfg, progress)
    written: list[Path] = []
    phases = Phases(prep.started)
    phases.mark("prepare (data, model, errors)")
    try:
        # Worker-process solvers (alibi: single-threaded TensorFlow, mostly waiting on its pipe)
        # run in a thread beside everything else; their tables are written once they are done.
        # In-process solvers first (Growing Spheres wants both cores), then the worker solvers
        # start beside the attribution suite.
        bg = None
        if cfg.counterfactuals.overlap:
            counterfactual_task.solve(prep, [n for n in cfg.counterfactuals.solvers
                                             if not counterfactual_task.in_worker(n)], progress)
            phases.mark("counterfactual solvers in this process")
            bg = counterfactual_task.start_background(prep, progress)
            prep.background.update(bg.names if bg else ())
        try:
            if cfg.attributions.methods:
                written += attribution_task.run(prep, progress)
                phases.mark("attributions (explain, score, write)")
        finally:
            if bg is not None:
                bg.join()
                phases.mark(f"waiting for {', '.join(bg.names)}")
        if cfg.counterfactuals.solvers:
            written += counterfactual_task.run(prep, progress)
            phases.mark("counterfactuals (solve the rest, score, write)")
        written.append(publish.write_manifest(prep.errors, prep.out_dir))
        used = publish.used_checkpoints(prep)
        if cfg.publish:
            written += publish.pin_weights(used)
    finally:
        prep.store.release()
    log.info("phases: %s", phases)
    return dict(folder=str(prep.out_dir), paths=[str(p) for p in written], n_errors=len(prep.errors),
                checkpoints=used, phases=phases.seconds,
                test_accuracy=prep.model_meta.get("test_accuracy"),
                seconds=round(time.perf_counter() - prep.started, 1))
