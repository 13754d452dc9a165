"""The typed run context: everything a cell's tasks share, built once by `bench.cell.open_cell`.

`RunContext`: the config, the data, the trained model and its metadata, the oracle, the error
set, the store, the output folder, and the `MetricContext` (the run-wide services metrics and
methods get through `bench.contract`). `metric_context` wires those services to bench's
checkpoint cache and training loop. `RunStore` is what the pipeline asks of a store: the
SQLite `bench.store.Store` and a Ray worker's `bench.study.memstore.MemoryStore` both offer it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bench.config import RunConfig, TrainConfig
from bench.contract.metrics import MetricContext
from bench.contract.oracle import Oracle
from bench.data.splits import Dataset
from bench.error_set import ErrorSet
from bench.store import entry_key


class RunStore(Protocol):
    """Per-instance records and scores of a run's entries, keyed by entry key (see bench.store.Store)."""

    def add_entry(self, key: str, task: str, method: str, mode: str, version: str, params: dict,
                  context: dict) -> None: ...
    def done_indices(self, key: str) -> set[int]: ...
    def add_records(self, key: str, rows: list[dict]) -> None: ...
    def records(self, key: str, indices: list[int] | None = None) -> list[dict]: ...
    def set_fit_cost(self, key: str, queries: float, seconds: float, info: dict | None = None) -> None: ...
    def scored_indices(self, key: str, metric: str, version: str) -> set[int]: ...
    def add_scores(self, key: str, metric: str, version: str, indices: list[int], values: list[float]) -> None: ...
    def scores(self, key: str, metric: str, version: str, indices: list[int]) -> np.ndarray: ...
    def add_cost(self, key: str, metric: str, version: str, n: int, seconds: float) -> None: ...


@dataclass
class RunContext:
    """One run: what it was asked (cfg) and what it prepared for its tasks."""

    cfg: RunConfig
    device: torch.device
    data: Dataset
    model: torch.nn.Module
    model_meta: dict
    oracle: Oracle
    errors: ErrorSet
    store: RunStore
    out_dir: Path | None  # None in a Ray worker (it writes no files)
    key_parts: dict  # what every store key of this run shares (dataset, model, weights, manifest, seed)
    metric_ctx: MetricContext
    started: float = field(default_factory=time.perf_counter)
    solved_now: dict[str, int] = field(default_factory=dict)  # method -> instances produced in this run
    background: set[str] = field(default_factory=set)  # methods produced in the local executor's lane
    run_id: int | None = None  # the store's record of this run (bench runs), until bench.cell.end_run

    def key(self, **parts) -> str:
        return entry_key(context=self.key_parts, **parts)

    def first_n(self, subset: dict, name: str) -> int:
        """How many errors (the first n) entry `name` runs on: subset[name], else subset["*"], else all."""
        n = len(self.errors)
        return min(int(subset.get(name, subset.get("*", n))), n)


def metric_context(data: Dataset, oracle: Oracle | None, device, *, cache_dir: str = "~/.cache/bench",
                   seed: int = 0, dataset: str = "mnist", model_name: str = "cnn", use_reference: bool = True,
                   progress: bool = False, model_sha256: str = "") -> MetricContext:
    """A MetricContext whose `checkpoint` and `train_classifier` use bench's cache and training loop."""
    from bench import checkpoints
    from bench.models.train import fit

    def checkpoint_fn(relpath, build_fn, train_fn):
        return checkpoints.load_or_build(relpath, build_fn, train_fn, cache_dir, use_reference)

    def train_fn(model, settings: dict, seed_: int) -> dict:
        cfg = TrainConfig(**settings)
        return fit(model, data, cfg, seed_, torch.device(device), progress=progress)

    return MetricContext(oracle=oracle, data=data, device=device, cache_dir=cache_dir, seed=seed, dataset=dataset,
                         model_name=model_name, model_sha256=model_sha256, use_reference=use_reference,
                         progress=progress,
                         checkpoint_fn=checkpoint_fn, train_fn=train_fn)


def method_seeds(cls: type, params: dict, run_seed: int) -> dict:
    """`params` with the method's `seed` set to the run seed unless the config sets it.

    The derivation (documented in the README): every stochastic method and metric draws from
    its own generator seeded with the run seed; an explicit per-method `seed` wins. Run seed 0
    therefore reproduces the published boards, whose methods all used seed 0.
    """
    fields = {f.name for f in dataclasses.fields(cls.Params)}
    if "seed" in fields and "seed" not in params:
        return dict(params, seed=run_seed)
    return dict(params)
