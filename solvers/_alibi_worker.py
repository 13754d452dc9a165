"""Private: alibi (TF-1 graph code) runs in a spawned worker, which also evaluates the model.

alibi's counterfactual explainers need TensorFlow in graph mode (eager disabled, global
graph state), which stays out of the main process: one worker process, started on first
use (TF imported there once), shared by the alibi solvers of this process, one graph,
session and explainer per distinct setting, reused across instances (see `_build`).

The model goes to the worker once, as the harness's own *portable* oracle
(`Oracle.portable()`: a black-box Oracle over a CPU copy of the model). Every row alibi asks
to predict is evaluated and counted by that oracle inside the worker, so a prediction is a
function call, not a pipe round trip through the parent (whose interpreter may be busy with
other work); the worker reports each instance's counted rows and the parent adds them to its
own oracle (`count_remote`). The query budget and the time limit are enforced at each
prediction request in the worker (alibi is told to abort; the best counterfactual so far is
kept when `keep_best`); a worker silent for `grace_s` past its deadline, or one that dies, is
killed by the parent, and the next instance starts a fresh one.

Protocol (one duplex Pipe, one instance at a time):
    worker -> parent  ("ready", import_seconds)
    parent -> worker  ("oracle", portable black-box oracle, torch threads)  once per worker
    parent -> worker  ("train", x (M,F) float32, probs (M,K) float32)  prototype data
    parent -> worker  ("explain", method, init_kw, explain_kw, x (1,F), shape, timeout_s,
                       max_queries, keep_best)
    worker -> parent  ("done", x_cf (1,F) | None, cf_class | None, rows, stopped)
                      | ("failed", reason, rows, stopped)
    parent -> worker  ("close",)
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import wait

import numpy as np


@dataclass
class Outcome:
    """What one instance produced: a flat counterfactual, or None and a failure reason."""

    x_cf: np.ndarray | None
    cf_class: int | None
    reason: str
    rows: int
    seconds: float
    stopped: str = ""  # why alibi was stopped early ("" = it ran to the end)


class AlibiWorker:
    """Parent side of the worker process (solvers use the module's shared instance).

    Args:
        grace_s: how long a worker may stay silent past a deadline before it is killed
            (the worker checks its deadline only when alibi asks for a prediction).
        start_timeout_s: how long importing TF + alibi in a fresh worker may take.
    """

    def __init__(self, grace_s: float = 30.0, start_timeout_s: float = 300.0) -> None:
        self.grace_s, self.start_timeout_s = grace_s, start_timeout_s
        self.proc = self.conn = self.train_key = self.oracle_key = None
        self.n_starts, self.import_seconds, self.users = 0, [], 0

    def start(self) -> None:
        """Spawn the worker unless one is alive, and wait until TF and alibi are imported."""
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
            raise RuntimeError("the alibi worker exited or hung while importing TensorFlow")
        self.import_seconds.append(float(self.conn.recv()[1]))

    def explain(self, oracle, method: str, init_kw: dict, explain_kw: dict, x: np.ndarray, shape: tuple,
                train, timeout_s: float, max_queries: int, keep_best: bool = True) -> Outcome:
        """Explain one flat instance `x` (1,F); never raises: failures come back as reasons.

        `oracle` is the solver's black-box oracle: its portable copy evaluates alibi's rows in
        the worker. On a timeout or an exhausted query budget, alibi's best counterfactual so
        far is kept when `keep_best` (anytime result, `stopped` says why); otherwise the row fails.
        """
        t0 = time.perf_counter()
        try:
            self.start()
            if self.oracle_key is not oracle:
                import torch

                # as many intra-op threads as the calling thread has (1 in a background thread)
                self.conn.send(("oracle", oracle.portable(), torch.get_num_threads()))
                self.oracle_key = oracle
            if train is not None and self.train_key is not train:
                self.conn.send(("train", train[0], train[1]))
                self.train_key = train
            t0 = time.perf_counter()  # worker start-up is not the instance's time
            self.conn.send(("explain", method, init_kw, explain_kw, x, shape, timeout_s, max_queries, keep_best))
        except Exception as e:  # noqa: BLE001 - a start failure is this row's failure
            self.kill()
            return Outcome(None, None, f"worker start failed: {type(e).__name__}: {e}", 0,
                           time.perf_counter() - t0)
        limit = t0 + timeout_s + self.grace_s
        if not wait([self.conn, self.proc.sentinel], max(limit - time.perf_counter(), 0.0)):
            self.kill()
            return Outcome(None, None, f"timeout after {timeout_s:g} s (worker killed)", 0,
                           time.perf_counter() - t0)
        try:
            msg = self.conn.recv()
        except (EOFError, OSError):
            code = self.proc.join(5) or self.proc.exitcode
            self.kill()
            return Outcome(None, None, f"worker crashed (exit code {code})", 0, time.perf_counter() - t0)
        seconds = time.perf_counter() - t0
        if msg[0] == "failed":
            return Outcome(None, None, msg[1], msg[2], seconds, msg[3])
        _, x_cf, cf_class, rows, stopped = msg
        if x_cf is None:
            return Outcome(None, None, "alibi found no counterfactual", rows, seconds, stopped)
        return Outcome(x_cf, cf_class, "", rows, seconds, stopped)

    def kill(self) -> None:
        """Terminate the worker now; the next `start` spawns a fresh one."""
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = self.train_key = self.oracle_key = None

    def close(self) -> None:
        """Ask the worker to exit, then make sure it has."""
        if self.proc is not None and self.proc.is_alive():
            try:
                self.conn.send(("close",))
                self.proc.join(5)
            except (OSError, ValueError):
                pass
        self.kill()


SHARED = AlibiWorker()
atexit.register(SHARED.close)


# ---------------------------------------------------------------- worker process side
class _Abort(Exception):
    """The parent refused a prediction (timeout or query budget)."""


def _serve(conn) -> None:
    """Worker main loop: import TF in graph mode once, then explain instances on request."""
    for k in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[k] = "1"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # any GPU stays the parent's; the worker's copy runs on CPU
    if not os.environ.get("BENCH_DEBUG"):  # TF's import-time cuDNN/cuFFT registration noise
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    t0 = time.perf_counter()
    import tensorflow as tf
    import torch

    from bench.contract import keep_freed_memory

    keep_freed_memory()  # as in the parent: large prediction batches must not re-fault their memory
    torch.set_num_threads(1)
    tf.get_logger().setLevel("ERROR")
    logging.getLogger("alibi").setLevel(logging.ERROR)  # "no counterfactual" becomes a reason
    tf.compat.v1.disable_eager_execution()
    from alibi.explainers.cfproto import CounterfactualProto
    from alibi.explainers.counterfactual import Counterfactual

    classes = {"proto": CounterfactualProto, "wachter": Counterfactual}
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    train, oracle, limits = None, None, {}

    def predict(rows: np.ndarray) -> np.ndarray:
        if train is not None and rows is train[0]:  # prototype fit: the parent predicted these once
            return train[1]
        n, counted = len(rows), int(oracle.queries[0])
        if time.perf_counter() > limits["deadline"]:
            raise _Abort(f"timeout after {limits['timeout_s']:g} s")
        if counted + n > limits["max_queries"]:
            raise _Abort(f"query budget exceeded: {counted} + {n} rows > max_queries={limits['max_queries']}")
        x = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).reshape(n, *limits["shape"])
        return oracle.probs(x, owner=torch.zeros(n, dtype=torch.long)).double().numpy()

    conn.send(("ready", time.perf_counter() - t0))
    explainers: dict = {}  # (method, init_kw, shape) -> (graph, session, explainer): built once, reused
    while (msg := conn.recv())[0] != "close":
        if msg[0] == "oracle":
            oracle = msg[1]
            torch.set_num_threads(msg[2])
            continue
        if msg[0] == "train":
            train = (msg[1], msg[2])
            explainers.clear()  # their k-d trees were fitted on the previous prototype data
            continue
        _, method, init_kw, explain_kw, x, shape, timeout_s, max_queries, keep_best = msg
        limits = dict(deadline=time.perf_counter() + timeout_s, timeout_s=timeout_s, max_queries=max_queries,
                      shape=shape)
        oracle.start(1)
        key = (method, repr(sorted(init_kw.items())), x.shape)
        explainer, stopped = None, ""
        try:
            if key not in explainers:
                explainers[key] = _build(tf, classes[method], predict, x.shape, init_kw, train, config)
            graph, _, explainer = explainers[key]
            with graph.as_default():
                cf = explainer.explain(x, **explain_kw).cf
            reply = ("done", None, None) if cf is None else ("done", _flat(cf["X"]), int(cf["class"]))
        except _Abort as e:  # stopped by a budget: hand back the best iterate found so far
            stopped = str(e)
            best = _best_so_far(explainer, explain_kw) if keep_best else None
            reply = ("failed", stopped) if best is None else ("done", *best)
            _drop(explainers, key)  # stopped mid-iteration: the next instance gets a fresh graph
        except Exception as e:  # noqa: BLE001 - alibi errors (incl. issue #186) become reasons
            reply = ("failed", f"alibi failed: {type(e).__name__}: {e}")
            _drop(explainers, key)
        conn.send((*reply, int(oracle.queries[0]), stopped))


def _build(tf, cls, predict, shape: tuple, init_kw: dict, train, config) -> tuple:
    """A graph, a session and an alibi explainer in it (k-d trees fitted when asked).

    alibi re-initialises every variable of its graph at the start of each `explain`
    (CounterfactualProto.attack and Counterfactual._minimize_loss run their initialisers and
    setup assignments), so one explainer serves every instance with the same settings: the
    graph is built, and the k-d trees fitted, once instead of once per image.
    """
    graph = tf.Graph()
    sess = tf.compat.v1.Session(graph=graph, config=config)
    with graph.as_default():
        explainer = cls(predict, shape=shape, sess=sess, **init_kw)
        if init_kw.get("use_kdtree"):
            explainer.fit(train[0])
    return graph, sess, explainer


def _drop(explainers: dict, key) -> None:
    entry = explainers.pop(key, None)
    if entry is not None:
        entry[1].close()


def _flat(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(1, -1)


def _best_so_far(explainer, explain_kw: dict):
    """(x_cf, class) of the best counterfactual alibi had recorded when stopped, or None.

    CounterfactualProto appends each new overall best to `cf_global[c_step]` (its class is
    the single target class asked for); Counterfactual keeps its best in `return_dict["cf"]`.
    """
    hist = getattr(explainer, "cf_global", None)
    if hist:
        bests = [b for step in sorted(hist) for b in hist[step]]
        return (_flat(bests[-1]), int(explain_kw["target_class"][0])) if bests else None
    cf = (getattr(explainer, "return_dict", None) or {}).get("cf")
    return None if cf is None else (_flat(cf["X"]), int(cf["class"]))
