"""Pinned definitions shared by methods and metrics (one definition, one place)."""

from __future__ import annotations

import torch


def total_variation(delta: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV per row of (N,C,H,W): sum |d/dh| + sum |d/dw| (exact, no mean); differentiable."""
    dh = (delta[:, :, 1:, :] - delta[:, :, :-1, :]).abs().flatten(1).sum(1)
    dw = (delta[:, :, :, 1:] - delta[:, :, :, :-1]).abs().flatten(1).sum(1)
    return dh + dw
