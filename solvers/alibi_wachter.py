"""alibi Counterfactual, Wachter et al. 2017 (https://arxiv.org/abs/1711.00399).

Black-box adapter for alibi's `Counterfactual`: minimise
(p_target(x_cf) - target_proba)^2 + lambda * ||x_cf - x||_1 with Adam, the prediction
gradient taken numerically (2 * 784 rows per iteration plus two checks). alibi first
sweeps 10 values of lambda (max_iter // 10 iterations each), then bisects lambda for
`max_lam_steps` rounds of up to `max_iter` iterations (early stop after `early_stop`
iterations that all pass or all fail). A counterfactual is an iterate with
|p_target - target_proba| <= tol. With target_proba = 1 and tol = 0.5 that is
p_target >= 0.5, which implies argmax == target (the harness's validity).

alibi runs in a worker process (solvers/_alibi_worker.py); every row it predicts goes
through the oracle and counts as a query of its instance. Each instance is bounded by
`max_queries` and `timeout_s`.

Defaults: max_iter=50, early_stop=25, max_lam_steps=2 cost at most (50 + 2 * 50) * ~1571
rows; measured ~158k rows per MNIST error (25-95 s on two shared CPU cores, 3/3 valid).
`max_queries` (250k) covers that schedule, so the hardware-independent budget only binds
when the schedule is raised; `timeout_s` is a safety net for slow hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bench.contract import ConfigError, Range
from solvers import SOLVERS
from solvers._alibi_solver import AlibiSolver


@dataclass(frozen=True)
class WachterParams:
    """Args:
    target_proba: probability of the target class to aim for.
    tol: an iterate counts when |p_target - target_proba| <= tol.
    max_iter: Adam iterations per lambda step (the initial sweep also uses max_iter).
    max_lam_steps: bisection rounds on lambda after the sweep.
    lam_init: largest lambda of the initial sweep (then /10 nine times).
    early_stop: end a lambda round after this many consecutive passing (or failing) iterates.
    learning_rate_init: Adam step size, linearly decayed to 0 within each round.
    eps: finite-difference step for the numerical gradient (pixel units).
    max_queries: per-instance query budget (rows); alibi is aborted past it.
    timeout_s: per-instance wall-time budget; alibi is aborted past it.
    keep_best: when aborted (budget or timeout), keep alibi's best counterfactual so far
        (an anytime result; info["stopped"] says why) instead of failing the row.
    """

    target_proba: Annotated[float, Range("(0, 1]")] = 1.0
    tol: Annotated[float, Range("[0, 1]")] = 0.5
    max_iter: Annotated[int, Range("[1, 100000]")] = 50
    max_lam_steps: Annotated[int, Range("[0, 100]")] = 2
    lam_init: Annotated[float, Range("(0, 1e6]")] = 0.1
    early_stop: Annotated[int, Range("[1, 100000]")] = 25
    learning_rate_init: Annotated[float, Range("(0, 10]")] = 0.1
    eps: Annotated[float, Range("(0, 1]")] = 0.01
    max_queries: Annotated[int, Range("[1, 10**8]")] = 250_000
    timeout_s: Annotated[float, Range("(0, 86400]")] = 300.0
    keep_best: bool = True

    def __post_init__(self) -> None:
        for key in ("max_iter", "early_stop", "max_queries"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        for key in ("lam_init", "learning_rate_init", "eps", "timeout_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be > 0, got {getattr(self, key)!r}")
        for key in ("tol", "max_lam_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")
        if not 0 < self.target_proba <= 1:
            raise ConfigError(f"target_proba must be in (0, 1], got {self.target_proba!r}")


@SOLVERS.register()
class AlibiWachter(AlibiSolver):
    """alibi Counterfactual (Wachter et al.), numerical gradients, in a worker process."""

    Params = WachterParams
    version = "1"
    white_box = False
    paper = "https://arxiv.org/abs/1711.00399"
    method = "wachter"

    def _kwargs(self, target: int) -> tuple[dict, dict]:
        p = self.params
        init_kw = dict(distance_fn="l1", target_proba=p.target_proba, target_class=target,
                       max_iter=p.max_iter, early_stop=p.early_stop, lam_init=p.lam_init,
                       max_lam_steps=p.max_lam_steps, tol=p.tol,
                       learning_rate_init=p.learning_rate_init, feature_range=(0.0, 1.0),
                       eps=p.eps)
        return init_kw, {}
