"""Typed results that every solver and attribution method returns.

Failure is a value: a counterfactual solver that finds nothing for row i returns
`success[i] = False` (and its best attempt in `x_cf[i]`), never an exception or a dropped row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class CFResult:
    """Counterfactuals for a batch.

    Attributes:
        x_cf: float32 (N,C,H,W) in [0,1], same device as the input.
        success: bool (N,) the solver's own claim that row i reaches the target
            (the harness re-checks validity independently with the oracle).
        reason: one short string per row ("" when fine) saying why a row failed.
        seconds: wall time per row, for solvers that work one row at a time (None: the
            harness divides the batch's time by its size).
        info: per-batch extras (e.g. radius reached) for a caller using the solver directly;
            the harness does not store them.
    """

    x_cf: torch.Tensor
    success: torch.Tensor
    reason: list[str] = field(default_factory=list)
    seconds: list[float] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.x_cf.shape[0]
        if self.success.shape != (n,) or self.success.dtype != torch.bool:
            raise ValueError("CFResult.success must be a bool tensor of shape (N,)")
        if not self.reason:
            self.reason = ["" for _ in range(n)]
        if len(self.reason) != n:
            raise ValueError("CFResult.reason must hold one string per row")
        if self.seconds is not None and len(self.seconds) != n:
            raise ValueError("CFResult.seconds must hold one time per row (or be None)")


@dataclass
class AttrResult:
    """Attribution maps for a batch.

    Attributes:
        attr: float32 tensor shaped like x (N,C,H,W); larger = more evidence for the
            explained class.
        explained: int64 (N,) the class each row was explained for.
        info: per-batch extras for a caller using the method directly (not stored).
    """

    attr: torch.Tensor
    explained: torch.Tensor
    info: dict = field(default_factory=dict)
