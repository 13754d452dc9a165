"""Private: alibi (TF-1 graph code) runs in a spawned worker; the parent answers its predictions.

alibi's counterfactual explainers need TensorFlow in graph mode (eager disabled, global
graph state). That state stays out of the main process: one worker process per solver,
started on first use (TF imported once there), reused across instances, one fresh graph
and session per instance. The model never leaves the parent: every batch of rows alibi
wants predicted comes back over the pipe and goes through `oracle.probs(rows, owner=i)`,
so the oracle counts every row as a query of instance i.

Protocol (one duplex Pipe, one instance at a time):
    worker -> parent  ("ready", import_seconds)
    parent -> worker  ("train", x (M,F) float32, probs (M,K) float32)  prototype data, once
    parent -> worker  ("explain", method, init_kw, explain_kw, x (1,F) float32)
    worker -> parent  ("predict", rows (R,F) float32)       any number of times
    parent -> worker  ("probs", (R,K) float64) | ("abort", reason)
    worker -> parent  ("done", x_cf (1,F) | None, cf_class | None) | ("failed", reason)
    parent -> worker  ("close",)
A timeout or a query budget is enforced at the next prediction request (the worker is
told to abort and stays warm); a worker silent for `grace_s` past its deadline, or one
that dies, is killed and restarted for the next instance.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np

_LIVE: "weakref.WeakSet[AlibiWorker]" = weakref.WeakSet()


@dataclass
class Outcome:
    """What one instance produced: a counterfactual (flat) or a failure reason."""

    x_cf: np.ndarray | None
    cf_class: int | None
    reason: str
    rows: int
    seconds: float


class AlibiWorker:
    """Parent side of one worker process.

    Args:
        grace_s: how long a worker may stay silent past its deadline before it is killed.
        start_timeout_s: how long TF + alibi may take to import in a fresh worker.
    """

    def __init__(self, grace_s: float = 5.0, start_timeout_s: float = 180.0) -> None:
        self.grace_s = grace_s
        self.start_timeout_s = start_timeout_s
        self.proc = self.conn = None
        self.train_key: object = None
        self.n_starts = 0
        self.import_seconds: list[float] = []
        _LIVE.add(self)

    def start(self) -> None:
        """Spawn the worker (if none is alive) and wait until TF and alibi are imported."""
        if self.proc is not None and self.proc.is_alive():
            return
        self.kill()
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="bench-alibi")
        self.proc.start()
        child.close()
        self.n_starts += 1
        if not wait([self.conn, self.proc.sentinel], self.start_timeout_s) or not self.conn.poll():
            self.kill()
            raise RuntimeError("alibi worker did not start")
        self.import_seconds.append(float(self.conn.recv()[1]))

    def explain(self, oracle, owner: int, method: str, init_kw: dict, explain_kw: dict,
                x: np.ndarray, shape: tuple, train, timeout_s: float, max_queries: int) -> Outcome:
        """Explain one flat instance `x` (1,F); never raises, failures come back as reasons."""
        t0 = time.perf_counter()
        try:
            self.start()
            if train is not None and self.train_key is not train:
                self.conn.send(("train", train[0], train[1]))
                self.train_key = train
            t0 = time.perf_counter()  # worker start-up is not the instance's time
            self.conn.send(("explain", method, init_kw, explain_kw, x))
        except Exception as e:  # noqa: BLE001 - any start failure is this row's failure
            self.kill()
            return Outcome(None, None, f"worker start failed: {type(e).__name__}: {e}", 0,
                           time.perf_counter() - t0)
        deadline, rows, abort = t0 + timeout_s, 0, ""
        while True:
            now = time.perf_counter()
            wait_s = (deadline - now) if not abort else (deadline + self.grace_s - now)
            ready = wait([self.conn, self.proc.sentinel], max(wait_s, 0.0))
            if not ready:
                if not abort:
                    abort = f"timeout after {timeout_s:g} s"
                    continue
                self.kill()
                return Outcome(None, None, f"{abort} (worker killed)", rows, time.perf_counter() - t0)
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                code = self.proc.exitcode if self.proc is not None else None
                self.kill()
                return Outcome(None, None, f"worker crashed (exit code {code})", rows,
                               time.perf_counter() - t0)
            if msg[0] == "predict":
                batch = msg[1]
                if not abort and time.perf_counter() > deadline:
                    abort = f"timeout after {timeout_s:g} s"
                if not abort and rows + len(batch) > max_queries:
                    abort = f"query budget exceeded ({rows} + {len(batch)} > max_queries={max_queries})"
                if abort:
                    self.conn.send(("abort", abort))
                    continue
                try:
                    probs = _predict(oracle, batch, shape, owner)
                except Exception as e:  # noqa: BLE001
                    abort = f"prediction failed: {type(e).__name__}: {e}"
                    self.conn.send(("abort", abort))
                    continue
                rows += len(batch)
                self.conn.send(("probs", probs))
                continue
            seconds = time.perf_counter() - t0
            if abort:
                return Outcome(None, None, abort, rows, seconds)
            if msg[0] == "failed":
                return Outcome(None, None, f"alibi failed: {msg[1]}", rows, seconds)
            if msg[1] is None:
                return Outcome(None, None, "alibi found no counterfactual", rows, seconds)
            return Outcome(msg[1], msg[2], "", rows, seconds)

    def kill(self) -> None:
        """Terminate the worker now (no goodbye); the next `start` spawns a fresh one."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        for c in (self.conn,):
            if c is not None:
                c.close()
        self.proc = self.conn = None
        self.train_key = None

    def close(self) -> None:
        """Ask the worker to exit cleanly, then make sure it has."""
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(("close",))
                self.proc.join(5)
            except (OSError, ValueError):
                pass
        self.kill()


def _predict(oracle, batch: np.ndarray, shape: tuple, owner: int) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).reshape(len(batch), *shape)
    who = torch.full((len(batch),), owner, dtype=torch.long)
    return oracle.probs(x, owner=who).detach().cpu().double().numpy()


class WorkerSolver:
    """Mixin for the alibi adapters: a lazy worker, the per-instance loop, `close()`.

    Subclasses set `method` ("proto" | "wachter") and `_kwargs(target) -> (init_kw,
    explain_kw)`; their Params carry `timeout_s` and `max_queries`. `_train` holds the
    prototype data (flat images, probabilities) when the method needs it.
    """

    method = ""
    _worker: AlibiWorker | None = None
    _train: tuple | None = None

    def _kwargs(self, target: int) -> tuple[dict, dict]:
        return {}, {}

    def __call__(self, x, target):
        import torch

        from bench.results import CFResult

        p, n = self.params, len(x)
        if self._worker is None:
            self._worker = AlibiWorker()
        flat = x.detach().cpu().float().reshape(n, -1).numpy()
        x_cf, ok, reasons, secs, rows = x.detach().clone(), [], [], [], []
        for i, t in enumerate(target.tolist()):
            init_kw, explain_kw = self._kwargs(int(t))
            out = self._worker.explain(self.oracle, i, self.method, init_kw, explain_kw, flat[i:i + 1],
                                       tuple(x.shape[1:]), self._train, p.timeout_s, p.max_queries)
            if out.x_cf is not None:
                x_cf[i] = torch.from_numpy(out.x_cf).reshape(x.shape[1:]).to(x_cf).clamp(0.0, 1.0)
            good = out.x_cf is not None and out.cf_class == int(t)
            ok.append(good)
            reasons.append(out.reason or ("" if good else f"alibi counterfactual has class {out.cf_class}"))
            secs.append(round(out.seconds, 4))
            rows.append(out.rows)
        info = dict(seconds=secs, rows=rows, worker_starts=self._worker.n_starts,
                    tf_import_s=[round(s, 2) for s in self._worker.import_seconds])
        return CFResult(x_cf=x_cf, success=torch.tensor(ok, dtype=torch.bool, device=x.device),
                        reason=reasons, info=info)

    def close(self) -> None:
        """Shut the worker process down (a later call starts a fresh one)."""
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@atexit.register
def _close_all() -> None:
    for w in list(_LIVE):
        w.close()


# ---------------------------------------------------------------- worker process side
class _Abort(Exception):
    """The parent refused a prediction (timeout or query budget)."""


def _serve(conn) -> None:
    """Worker main loop: import TF in graph mode once, then explain instances on request."""
    for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[k] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    tf.compat.v1.disable_eager_execution()
    from alibi.explainers.cfproto import CounterfactualProto
    from alibi.explainers.counterfactual import Counterfactual

    classes = {"proto": CounterfactualProto, "wachter": Counterfactual}
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    train = None

    def predict(rows: np.ndarray) -> np.ndarray:
        if train is not None and rows is train[0]:  # prototype fit: labels computed once by the parent
            return train[1]
        conn.send(("predict", np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)))
        kind, payload = conn.recv()
        if kind == "abort":
            raise _Abort(payload)
        return payload

    conn.send(("ready", time.perf_counter() - t0))
    while True:
        msg = conn.recv()
        if msg[0] == "close":
            return
        if msg[0] == "train":
            train = (msg[1], msg[2])
            continue
        _, method, init_kw, explain_kw, x = msg
        graph = tf.Graph()
        try:
            with graph.as_default(), tf.compat.v1.Session(graph=graph, config=config) as sess:
                explainer = classes[method](predict, shape=x.shape, sess=sess, **init_kw)
                if init_kw.get("use_kdtree"):
                    explainer.fit(train[0])
                cf = explainer.explain(x, **explain_kw).cf
            if cf is None:
                conn.send(("done", None, None))
            else:
                conn.send(("done", np.asarray(cf["X"], dtype=np.float32).reshape(1, -1), int(cf["class"])))
        except _Abort as e:
            conn.send(("failed", str(e)))
        except Exception as e:  # noqa: BLE001 - alibi errors (incl. issue #186) become reasons
            conn.send(("failed", f"{type(e).__name__}: {e}"))
        finally:
            del graph
