"""Shared wiring of the ART decision-based attacks: a counted, budgeted classifier and target-class starts.

ART (adversarial-robustness-toolbox, https://github.com/Trusted-AI/adversarial-robustness-toolbox)
drives the model through an estimator's `predict(x_numpy)`. Here that estimator is an ART
`BlackBoxClassifier` whose predict function is `Ledger.predict`: every row goes through the
bench oracle (`oracle.probs`, owner = the instance), so queries are counted by bench, never by
ART. The ledger also enforces the per-instance budget (a call that would overrun it is not
evaluated: `BudgetSpent` stops the attack) and keeps the closest rows the model put in the
target class (by MIN_MARGIN), so the solver returns the best counterfactual the attack had found when its
budget ran out (attacks are anytime: a run with budget B is the first B queries of a longer one).

Start points. A targeted decision-based attack starts from a point already in the target
class; the HopSkipJump and Boundary Attack papers take an image of the target class. Here it is
the training image of the target class nearest to x (L2) that the model also labels target:
`fit` keeps the training split by class, `start_point` queries the nearest candidates (counted,
in chunks of 1, 2, 4, 8 rows) until one is confirmed.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Iterator

import numpy as np
import torch

RESERVE = 2  # rows kept back per instance for the final re-check of the returned counterfactual
# A row counts as a counterfactual only when its target log-probability (= logit) beats every other
# class by this much. Decision-based attacks end on the boundary (HopSkipJump's binary search to
# within 3.6e-4 of the distance): there a row valid in one batch may not be in another, since the
# frozen forward's logits move with the batch composition (< 1e-4, typically 1e-7). ART still
# decides by argmax; only what the solver may return is held to the margin.
MIN_MARGIN = 1e-3
START_CHUNKS = (1, 2, 4, 8)  # candidate start points queried per call, nearest first (15 in all)


class BudgetSpent(Exception):
    """The next model call would take the instance past its query budget."""


class Ledger:
    """One instance's budgeted, counted door to the model, and the closest target-class rows it saw.

    Args:
        oracle: the (black-box) oracle; every row is counted there with `owner`.
        x: the instance, float32 (1,C,H,W) on the oracle's device.
        target: the class a counterfactual must reach.
        owner: the instance's position in the batch the oracle is counting.
        cap: rows this ledger may evaluate (the attack's budget).
        keep: closest target-class rows remembered (candidates for the final re-check).
    """

    def __init__(self, oracle, x: torch.Tensor, target: int, owner: int, cap: int, keep: int = RESERVE) -> None:
        self.oracle, self.x, self.target, self.cap, self.keep = oracle, x, int(target), int(cap), keep
        self.owner = torch.tensor([owner], dtype=torch.long)
        self.used = 0  # rows evaluated through this ledger (the oracle counts the same rows)
        self.best: list[tuple[float, torch.Tensor]] = []  # (L2 to x, row), closest first
        self.trace: list[tuple[int, float]] = []  # (rows used, best L2) at every improvement

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """Counted softmax of `x` (rows, C,H,W); raises BudgetSpent (evaluating nothing) past the cap."""
        rows = len(x)
        if self.used + rows > self.cap:
            raise BudgetSpent
        out = self.oracle.probs(x, owner=self.owner.expand(rows))
        self.used += rows
        logp = out.clamp_min(1e-45).log()
        others = logp.clone()
        others[:, self.target] = -float("inf")
        margin = logp[:, self.target] - others.max(1).values
        hit = ((out.argmax(1) == self.target) & (margin >= MIN_MARGIN)).nonzero().squeeze(1)
        if len(hit):
            d = (x[hit] - self.x).flatten(1).norm(dim=1)
            before = self.best[0][0] if self.best else float("inf")
            order = d.argsort()[: self.keep].tolist()
            self.best = sorted(self.best + [(float(d[j]), x[hit[j]].detach().clone()) for j in order],
                               key=lambda t: t[0])[: self.keep]
            if self.best[0][0] < before:
                self.trace.append((self.used, self.best[0][0]))
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        """ART's predict function: numpy rows in, numpy probabilities out (float32)."""
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.x.device)
        return self.probs(xt.view(-1, *self.x.shape[1:])).float().cpu().numpy()

    def l2_at(self, budget: int) -> float:
        """Best L2 to x among target-class rows within the first `budget` rows (inf if none)."""
        return min((d for used, d in self.trace if used <= budget), default=float("inf"))


def classifier(ledger: Ledger, n_classes: int):
    """An ART BlackBoxClassifier over the ledger, pixel box [0, 1]."""
    from art.estimators.classification.blackbox import BlackBoxClassifier

    return BlackBoxClassifier(ledger.predict, tuple(ledger.x.shape[1:]), n_classes, clip_values=(0.0, 1.0))


def by_class(x_train: torch.Tensor, y_train: torch.Tensor) -> dict[int, torch.Tensor]:
    """Training images by class, flattened float32 (n_c, D) on the CPU (what `fit` keeps)."""
    flat = x_train.detach().flatten(1).float().cpu()
    return {int(c): flat[y_train.cpu() == c] for c in y_train.unique().tolist()}


def start_point(ledger: Ledger, pool: dict[int, torch.Tensor]) -> torch.Tensor | None:
    """The nearest training image of the target class the model labels target (counted), or None.

    Candidates are queried nearest first in chunks of START_CHUNKS rows; None when none of
    the sum(START_CHUNKS) nearest is labelled target (or the budget runs out first).
    """
    ref = pool[ledger.target]
    flat = ledger.x.flatten(1).cpu()
    order = torch.cdist(flat, ref).squeeze(0).argsort()
    shape, dev, at = ledger.x.shape[1:], ledger.x.device, 0
    for size in START_CHUNKS:
        rows = ref[order[at:at + size]]
        at += size
        if not len(rows):
            break
        pred = ledger.probs(rows.view(-1, *shape).to(dev)).argmax(1)
        ok = (pred == ledger.target).nonzero().squeeze(1)
        if len(ok):
            return rows[ok[0]].view(1, *shape).to(dev)
    return None


def recheck(ledger: Ledger) -> tuple[torch.Tensor | None, int]:
    """Re-evaluate the closest remembered rows one at a time (from the reserve); the first still in the
    target class is returned (float noise can move a row that sat on the boundary), with rows spent."""
    spent = 0
    for _, row in list(ledger.best):
        out = ledger.oracle.probs(row[None], owner=ledger.owner)
        spent += 1
        if int(out.argmax(1)) == ledger.target:
            return row, spent
    return None, spent


def row_seed(seed: int, x: torch.Tensor) -> int:
    """A seed keyed by (seed, the row's bytes): an instance gets the same draws in any batch."""
    return (seed * 1_000_003 + zlib.crc32(x.detach().cpu().numpy().tobytes())) % 2**32


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG (ART draws its directions from it) for the block, then restore it."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        yield
    finally:
        np.random.set_state(state)
