"""Private: the common base of the alibi adapters (per-instance loop over the shared worker).

See solvers/_alibi_worker.py for the worker process and its protocol.
"""

from __future__ import annotations

import torch

from bench.contract.methods import CounterfactualSolver
from bench.contract.results import CFResult
from solvers._alibi_worker import SHARED, AlibiWorker


class AlibiSolver(CounterfactualSolver):
    """Black-box alibi adapter: one alibi `explain` per instance in the shared worker.

    Subclasses set `method` ("proto" | "wachter") and `_kwargs(target) -> (init_kw,
    explain_kw)`; their Params carry `timeout_s`, `max_queries` and `keep_best`; `_train`
    holds prototype data (flat images, probabilities) when the method needs it. The worker
    starts on the first call and shuts down when the last solver using it calls `close()`
    (or at interpreter exit). Every row alibi predicts is evaluated and counted in the worker
    by the harness's portable oracle and charged to its instance here; `info` adds per-row seconds, rows, and why alibi was stopped early.
    """

    white_box = False
    in_worker = True
    method = ""
    _worker: AlibiWorker | None = None
    _train: tuple | None = None

    def _kwargs(self, target: int) -> tuple[dict, dict]:
        return {}, {}

    def _acquire(self) -> AlibiWorker:
        if self._worker is None:
            self._worker = SHARED
            SHARED.users += 1
        return self._worker

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "AlibiSolver":
        """Start the worker now (TF import, 5-20 s) so that no batch pays for it.

        Args:
            x_train: float32 (N,C,H,W) training images (unused here).
            y_train: int64 (N,) training labels (unused here).
        Returns:
            self. A worker that fails to start is retried on the first batch, whose rows
            then carry the reason.
        """
        try:
            self._acquire().start()
        except Exception:  # noqa: BLE001 - reported per row by __call__
            pass
        return self

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> CFResult:
        """Counterfactuals for one batch, one instance at a time.

        Args:
            x: float32 (N,C,H,W) in [0,1].
            target: int64 (N,) the class each counterfactual must reach.
        Returns:
            CFResult; failed rows keep x and say why in `reason`.
        """
        self._acquire()
        p, flat = self.params, x.detach().cpu().float().reshape(len(x), -1).numpy()
        x_cf, ok, reasons = x.detach().clone(), [], []
        info = dict(seconds=[], rows=[], stopped=[])
        for i, t in enumerate(target.tolist()):
            init_kw, explain_kw = self._kwargs(t)
            out = self._worker.explain(self.oracle, self.method, init_kw, explain_kw, flat[i:i + 1],
                                       tuple(x.shape[1:]), self._train, p.timeout_s, p.max_queries,
                                       p.keep_best)
            self.oracle.count_remote(out.rows, owner=i)  # rows the worker's portable oracle counted
            if out.x_cf is not None:
                x_cf[i] = torch.from_numpy(out.x_cf).reshape(x.shape[1:]).to(x_cf).clamp(0.0, 1.0)
            ok.append(out.x_cf is not None and out.cf_class == t)
            reasons.append(out.reason or ("" if ok[-1] else f"alibi counterfactual has class {out.cf_class}"))
            info["seconds"].append(round(out.seconds, 4))
            info["rows"].append(out.rows)
            info["stopped"].append(out.stopped)
        info.update(worker_starts=self._worker.n_starts,
                    tf_import_s=[round(s, 2) for s in self._worker.import_seconds])
        return CFResult(x_cf=x_cf, success=torch.tensor(ok, dtype=torch.bool, device=x.device),
                        reason=reasons, seconds=info["seconds"], info=info)

    def close(self) -> None:
        """Release the worker; the last solver to release it shuts the process down."""
        if self._worker is not None:
            self._worker.users -= 1
            if self._worker.users <= 0:
                self._worker.close()
            self._worker = None

    def __enter__(self) -> "AlibiSolver":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
