"""Counterfactual metrics with pinned definitions (ARCHITECTURE.md, leaderboards/README.md).

All distances are in [0,1] pixel space on delta = x_cf - x. Wachter et al. 2017
(https://arxiv.org/abs/1711.00399) for the validity/proximity framing; TV as in
Rudin, Osher & Fatemi 1992 (anisotropic form).
"""

from __future__ import annotations

import torch

from bench.contract.metrics import CFBatch, MetricContext, metric
from bench.contract.ops import total_variation
from metrics import CF_METRICS

L0_ATOL = 1e-3


def _delta(b: CFBatch) -> torch.Tensor:
    return (b.x_cf - b.x).flatten(1).double()


@metric(CF_METRICS, higher_is_better=True, version="1", kind="proportion",
        definition="1 if argmax f(x_cf) == target else 0")
def validity(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Validity: the model assigns x_cf to the target class. Returns float (N,) of 0/1."""
    return b.valid.double().cpu()


@metric(CF_METRICS, higher_is_better=True, version="1",
        definition="softmax probability of the target class at x_cf")
def target_prob(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Probability the model gives the target class at x_cf."""
    return b.probs_cf.gather(1, b.target.view(-1, 1).to(b.probs_cf.device)).squeeze(1).double().cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", valid_only=True,
        definition="sqrt(sum((x_cf - x)^2)), pixel space [0,1]; not squared")
def l2(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Euclidean norm of delta (the square root of the sum of squares)."""
    return _delta(b).norm(dim=1).cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", valid_only=True,
        definition="sum(|x_cf - x|)")
def l1(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Manhattan norm of delta."""
    return _delta(b).abs().sum(1).cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", valid_only=True,
        definition=f"number of pixels with |x_cf - x| > {L0_ATOL}")
def l0(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Pixels changed by more than 1e-3."""
    return (_delta(b).abs() > L0_ATOL).sum(1).double().cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", valid_only=True,
        definition="l0 / number of pixels (fraction of pixels changed)")
def sparsity(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Fraction of pixels changed by more than 1e-3."""
    d = _delta(b)
    return ((d.abs() > L0_ATOL).sum(1).double() / d.shape[1]).cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", valid_only=True,
        definition="anisotropic total variation of delta: sum|dh| + sum|dw|")
def tv(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Total variation of delta (low = smooth, blob-like edits; high = speckle)."""
    return total_variation((b.x_cf - b.x).double()).cpu()


@metric(CF_METRICS, higher_is_better=False, version="1",
        definition="model input rows evaluated by the solver, counted by the oracle")
def queries(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Forward rows charged to each instance."""
    return b.queries.double().cpu()


@metric(CF_METRICS, higher_is_better=False, version="1",
        definition="model rows back-propagated by the solver, counted by the oracle")
def grad_queries(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Gradient rows charged to each instance (0 for black-box solvers)."""
    return b.grad_queries.double().cpu()


@metric(CF_METRICS, higher_is_better=False, version="1", kind="timing",
        definition="wall time of the solver per instance (batch time / batch size)")
def seconds(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Seconds per instance."""
    return b.seconds.double().cpu()
