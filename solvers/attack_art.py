"""Decision-based black-box attacks from ART as counterfactual solvers: HopSkipJump, Boundary, Sign-OPT.

Each moves an error x toward its true class (`target`) with label-only access: ART's attack
runs on one instance at a time against a `BlackBoxClassifier` whose predict goes through the
bench oracle (solvers/_art_common.py), so every model row is counted by bench. `max_queries`
is the budget per error, every row included (the target-class start search, ART's own
bookkeeping calls, the final re-check); the attack is stopped when its next call would overrun
it and the closest target-class row it had queried is returned. The attacks' iteration limits
are set high by default, so the budget is what stops them: a run with budget B returns what
a longer run had after B queries (the same seed draws the same directions).

Defaults follow ART 1.20 (HopSkipJump: init_eval 100, max_eval 10,000, L2; Boundary: delta =
epsilon = 0.01, step_adapt 0.667, 25 trials of 20 samples; Sign-OPT: k = 200 directions,
epsilon 0.001, alpha 0.2, beta 0.001), except the iteration caps (budget-bound here). Every
attack starts from the nearest training image of the target class that the model labels
target (`fit` keeps the training split); ART's own start, uniform noise until the target class
comes up, almost never reaches a given digit. Failure is a value: no start, or a budget spent
before any target-class row, gives success=False with the reason.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch

from bench.contract import ConfigError, Range
from bench.contract.methods import CounterfactualSolver
from bench.contract.results import CFResult
from solvers import SOLVERS
from solvers._art_common import (
    RESERVE,
    BudgetSpent,
    Ledger,
    by_class,
    classifier,
    numpy_seeded,
    recheck,
    row_seed,
    start_point,
)

BUDGET = Range("[3, 10**8]")  # max_queries: RESERVE + 1 rows at least; 10^8 would not end on this hardware
SEED = Range("[0, 2**32)")



class ArtAttack(CounterfactualSolver):
    """Common call path: per instance a ledger, a start point, the seeded ART attack, the best row re-checked."""

    white_box = False
    # spends its whole budget refining (anytime): a different budget is a different run, unlike a
    # solver that stops at its first success (the equal-budget table reads the two kinds apart)
    anytime = True
    _pool: dict[int, torch.Tensor] | None = None

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "ArtAttack":
        self._pool = by_class(x_train, y_train)
        return self

    @abc.abstractmethod
    def attack(self, estimator):
        """The ART attack bound to `estimator`."""

    def generate(self, attack, x: np.ndarray, y: np.ndarray, start: np.ndarray) -> None:
        attack.generate(x, y=y, x_adv_init=start)

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> CFResult:
        if self._pool is None:
            raise RuntimeError(f"{type(self).__name__} needs fit(x_train, y_train) first (its start points)")
        p, n = self.params, len(x)
        n_classes = max(self._pool) + 1
        x_cf, success = x.detach().clone(), torch.zeros(n, dtype=torch.bool, device=x.device)
        reason, seconds, trace, used = [""] * n, [0.0] * n, [], []
        for i in range(n):
            t0 = time.perf_counter()
            xi, ti = x[i:i + 1].detach().float(), int(target[i])
            ledger = Ledger(self.oracle, xi, ti, i, p.max_queries - RESERVE)
            why = ""
            try:
                start = start_point(ledger, self._pool)
                if start is None:
                    why = "no training image of the target class among the nearest 15 is labelled target"
                else:
                    onehot = np.eye(n_classes, dtype=np.float32)[[ti]]
                    with numpy_seeded(row_seed(p.seed, xi)):
                        self.generate(self.attack(classifier(ledger, n_classes)), xi.cpu().numpy(), onehot,
                                      start.cpu().numpy())
            except BudgetSpent:
                pass  # the budget ran out: keep the closest target-class row queried so far
            row, spent = recheck(ledger) if ledger.best else (None, 0)
            if row is not None:
                x_cf[i], success[i] = row.to(x.dtype), True
            else:
                reason[i] = why or (f"no target-class row within max_queries={p.max_queries}" if not ledger.best
                                    else "counterfactual failed the final re-check")
            used.append(ledger.used + spent)
            trace.append(ledger.trace)
            seconds[i] = time.perf_counter() - t0
        return CFResult(x_cf=x_cf, success=success, reason=reason, seconds=seconds,
                        info=dict(queries_self=used, trace=trace))


@dataclass(frozen=True)
class HopSkipJumpParams:
    """Args:
    max_queries: query budget per error, every oracle row counted (start search and re-check included).
    max_iter: HopSkipJump iterations at most (high: the budget stops the attack first).
    init_eval: directions sampled for the first gradient estimate (ART: 100; sqrt(t) growth).
    max_eval: most directions per gradient estimate (ART: 10,000).
    batch_rows: most rows per oracle call.
    seed: seed of numpy's draws during the attack (per instance, keyed by the image).
    """

    max_queries: Annotated[int, BUDGET] = 10_000
    max_iter: Annotated[int, Range("[1, 10**7]")] = 10_000
    init_eval: Annotated[int, Range("[1, 10**6]")] = 100
    max_eval: Annotated[int, Range("[1, 10**7]")] = 10_000
    batch_rows: Annotated[int, Range("[1, 2**20]")] = 1024
    seed: Annotated[int, SEED] = 0

    def __post_init__(self) -> None:
        if self.init_eval > self.max_eval:
            raise ConfigError(f"init_eval ({self.init_eval}) must be <= max_eval ({self.max_eval})")


@SOLVERS.register()
class HopSkipJump(ArtAttack):
    """HopSkipJump (Chen, Jordan & Wainwright 2020), ART, targeted, L2, budget-bound."""

    Params = HopSkipJumpParams
    version = "1"
    paper = "https://arxiv.org/abs/1904.02144"

    def attack(self, estimator):
        from art.attacks.evasion.hop_skip_jump import HopSkipJump as ArtHopSkipJump

        p = self.params
        return ArtHopSkipJump(estimator, batch_size=p.batch_rows, targeted=True, norm=2, max_iter=p.max_iter,
                              max_eval=p.max_eval, init_eval=p.init_eval, init_size=1, verbose=False)


@dataclass(frozen=True)
class BoundaryParams:
    """Args:
    max_queries: query budget per error, every oracle row counted (start search and re-check included).
    max_iter: Boundary Attack iterations at most (high: the budget stops the attack first).
    delta: initial orthogonal step size (ART: 0.01). epsilon: initial step toward x (ART: 0.01).
    step_adapt: factor the step sizes adapt by (ART: 0.667).
    num_trial: trials per iteration (ART: 25). sample_size: rows per trial (ART: 20).
    batch_rows: most rows per oracle call.
    seed: seed of numpy's draws during the attack (per instance, keyed by the image).
    """

    max_queries: Annotated[int, BUDGET] = 10_000
    max_iter: Annotated[int, Range("[1, 10**8]")] = 1_000_000
    delta: Annotated[float, Range("(0, 10]")] = 0.01
    epsilon: Annotated[float, Range("(0, 1]")] = 0.01
    step_adapt: Annotated[float, Range("(0, 1)")] = 0.667
    num_trial: Annotated[int, Range("[1, 10**4]")] = 25
    sample_size: Annotated[int, Range("[1, 10**4]")] = 20
    batch_rows: Annotated[int, Range("[1, 2**20]")] = 1024
    seed: Annotated[int, SEED] = 0


@SOLVERS.register()
class BoundaryAttack(ArtAttack):
    """Boundary Attack (Brendel, Rauber & Bethge 2018), ART, targeted, budget-bound."""

    Params = BoundaryParams
    version = "1"
    paper = "https://arxiv.org/abs/1712.04248"

    def attack(self, estimator):
        from art.attacks.evasion.boundary import BoundaryAttack as ArtBoundary

        p = self.params
        return ArtBoundary(estimator, batch_size=p.batch_rows, targeted=True, delta=p.delta, epsilon=p.epsilon,
                           step_adapt=p.step_adapt, max_iter=p.max_iter, num_trial=p.num_trial,
                           sample_size=p.sample_size, init_size=1, verbose=False)


@dataclass(frozen=True)
class SignOptParams:
    """Args:
    max_queries: query budget per error, every oracle row counted (start search and re-check included);
        also ART's own `query_limit` (which ART checks only after each iteration, on its own count).
    max_iter: Sign-OPT iterations at most (high: the budget stops the attack first).
    k: random directions per sign-gradient estimate (ART: 200).
    epsilon: smoothing step of those directions (ART: 0.001).
    alpha: initial line-search step (ART: 0.2). beta: line-search tolerance (ART: 0.001).
    seed: seed of numpy's draws during the attack (per instance, keyed by the image).
    """

    max_queries: Annotated[int, BUDGET] = 10_000
    max_iter: Annotated[int, Range("[1, 10**8]")] = 100_000
    k: Annotated[int, Range("[1, 10**5]")] = 200
    epsilon: Annotated[float, Range("(0, 1]")] = 0.001
    alpha: Annotated[float, Range("(0, 100]")] = 0.2
    beta: Annotated[float, Range("(0, 1]")] = 0.001
    seed: Annotated[int, SEED] = 0


@SOLVERS.register()
class SignOpt(ArtAttack):
    """Sign-OPT (Cheng et al. 2020), ART, targeted, budget-bound; one model row per ART call."""

    Params = SignOptParams
    version = "1"
    paper = "https://arxiv.org/abs/1909.10773"

    def attack(self, estimator):
        from art.attacks.evasion.sign_opt import SignOPTAttack

        p = self.params
        return SignOPTAttack(estimator, targeted=True, epsilon=p.epsilon, num_trial=1, max_iter=p.max_iter,
                             query_limit=p.max_queries, k=p.k, alpha=p.alpha, beta=p.beta, batch_size=1,
                             verbose=False)

    def generate(self, attack, x, y, start) -> None:
        attack.generate(x, y=y, x_init=start)  # Sign-OPT's pool of target-class starts: the one found
