"""Removal operators: what a removed pixel becomes, and the order in which a map removes pixels.

Shared by the removal metrics (metrics/removal.py) and the leakage check of each operator
(metrics/leakage.py). "zeros" (MNIST's background value), "blur" (RISE's canvas, kernel 11,
sigma 5), "mean" (the image's own mean), "road" (ROAD's noisy linear imputation from the
neighbours, noise 0.01, metrics.road; Rong et al. 2022, https://arxiv.org/abs/2202.00449), or a
callable. Orders: MoRF removes the most relevant pixels first, LeRF the least relevant first
(ranks by attr summed over channels, stable ties; LeRF = the MoRF order reversed).
"""

from __future__ import annotations

from typing import Callable, Union

import torch

from metrics.deletion_insertion import make_substrate, pixel_rank
from metrics.road import NOISE, linear_impute

OPERATORS = ("zeros", "blur", "mean", "road")
# ROAD's solve here: residual 1e-4 of the right-hand side or 1e-7 absolute, 300 iterations at most
# (imputed values within ~1e-3 of the direct solve, a tenth of ROAD's noise SD; tested)
ROAD_TOL, ROAD_MAX_ITER, ROAD_ATOL = 1e-4, 300, 1e-7
# (x, removed bool (N,H,W), generator) -> x with the removed pixels replaced
Operator = Union[str, Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]]


def remove(x: torch.Tensor, removed: torch.Tensor, operator: Operator = "zeros", noise: float = NOISE,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """x with the `removed` pixels replaced by what `operator` writes there.

    Args:
        x: (N,C,H,W); removed: bool (N,H,W), True where a pixel is removed.
        operator: "zeros", "blur", "mean", "road" (noisy linear imputation), or a callable
            (x, removed, generator) -> image.
        noise: ROAD's noise SD; generator: seeds ROAD's noise.
    Returns:
        (N,C,H,W), kept pixels unchanged.
    """
    if callable(operator):
        return operator(x, removed, generator)
    if operator == "road":  # as metrics.road.noisy_linear_impute, from a smooth start, to ROAD_TOL
        by_size = removed.flatten(1).sum(1).argsort(stable=True)  # chunks of alike holes stop together
        out = torch.empty_like(x)
        out[by_size] = linear_impute(x[by_size], removed[by_size], tol=ROAD_TOL, max_iter=ROAD_MAX_ITER,
                                     init=smooth_fill(x[by_size], removed[by_size]), atol=ROAD_ATOL)
        if noise > 0:
            eps = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
            out = torch.where(removed[:, None].to(out.device), out + noise * eps, out)
        return out
    if operator not in OPERATORS:
        raise ValueError(f"unknown operator {operator!r}: use one of {', '.join(OPERATORS)} or a callable")
    return torch.where(removed[:, None].to(x.device), make_substrate(x, operator), x)


def smooth_fill(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """A push-pull fill of the removed pixels (kept pixels averaged down a 2x pyramid, holes filled
    from the coarser level by bilinear upsampling): the starting guess of ROAD's solve here. The
    solve's answer is the same (to its tolerance); from zeros, holes that cover most of the image
    take the conjugate gradients hundreds of times more iterations (~90x slower on 28x28).
    """
    keep = (~removed[:, None].to(x.device)).to(x.dtype).expand_as(x)
    return _push_pull(x * keep, keep)


def _push_pull(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    if min(v.shape[-2:]) <= 1:
        return torch.where(w > 0, v / w.clamp_min(1e-12), torch.zeros_like(v))
    coarse = _push_pull(F.avg_pool2d(v, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True))
    up = F.interpolate(coarse, size=v.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(w > 0, v / w.clamp_min(1e-12), up)


def order_rank(attr: torch.Tensor, order: str = "morf") -> torch.Tensor:
    """Position of each pixel in the removal order, int64 (N, H*W): 0 is removed first."""
    if order not in ("morf", "lerf"):
        raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")
    rank = pixel_rank(attr)
    return rank if order == "morf" else rank.shape[1] - 1 - rank
