"""ROAD: RemOve And Debias (Rong et al. 2022, https://arxiv.org/abs/2202.00449), batched.

Removed pixels are filled by *noisy linear imputation* (the reference code,
tleemann/road_evaluation `road/imputations.py`, `NoisyLinearImputer`): every removed pixel
takes the weighted mean of its 8 neighbours (weights 1/6 for the 4 edge neighbours, 1/12 for
the 4 corners; neighbours outside the image drop out and the mean is over the remaining
weights, exactly as the reference's diagonal), which is one sparse linear system per image
over the removed pixels (removed neighbours are unknowns too), plus Gaussian noise of SD `noise` (0.01 in the reference). Because the filled
pixels are predicted from their surroundings, the mask's shape carries less class information
than a hole of zeros does. The reference solves each image's system with a sparse direct
solver (~4-14 ms per 28x28 image here); this module solves a batch's systems together by
conjugate gradients with 3x3 convolutions (~0.1-0.2 ms per image and level), held equal to the
direct solve and to Quantus' `noisy_linear_imputation` in tests.

Scores (per instance, the explained class's probability relative to the unperturbed image's):
for removal levels 10%, 20%, ..., 90% of the pixels, most relevant first (MoRF) or least
relevant first (LeRF), the mean over levels of p(explained | imputed) / p(explained | x).
MoRF: lower is better; LeRF: higher is better; their difference LeRF - MoRF (SRG-style,
Bluecher et al.): higher is better.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS
from metrics.deletion_insertion import pixel_rank

NEIGHBOURS = (((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
              ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6))
LEVELS = tuple(range(10, 100, 10))  # percent of the pixels removed
NOISE = 0.01
CHUNK = 128  # images per conjugate-gradient solve


def _kernel(dtype, device) -> torch.Tensor:
    k = torch.zeros(3, 3, dtype=dtype, device=device)
    for (dr, dc), weight in NEIGHBOURS:
        k[1 + dr, 1 + dc] = weight
    return k.view(1, 1, 3, 3)


def linear_impute(x: torch.Tensor, removed: torch.Tensor, tol: float = 1e-6, max_iter: int = 2000,
                  dtype: torch.dtype = torch.float32, init: torch.Tensor | None = None,
                  atol: float = 0.0) -> torch.Tensor:
    """ROAD's linear imputation without noise: each removed pixel = weighted mean of its neighbours.

    The system of every image (and channel) is solved at once by conjugate gradients on the
    symmetric positive definite form (D - W) v = W x_kept restricted to the removed pixels
    (D: the sum of a pixel's in-image neighbour weights, as the reference's diagonal), with
    3x3 convolutions as the operator; `linear_impute_exact` is the reference's sparse direct
    solve, which tests hold this one equal to.

    Args:
        x: (N,C,H,W) images.
        removed: bool (N,H,W), True where the pixel is removed (imputed).
        tol: stop when every system's residual norm is below tol * its right-hand side's norm.
        max_iter: conjugate-gradient iterations at most.
        dtype: of the solve (float32: imputed values within ~1e-6 of the direct solve, far below
            ROAD's noise of 0.01; float64 with a smaller tol for tests of the last digits).
        init: (N,C,H,W) a starting guess for the removed pixels (None: zeros, as the ROAD metrics
            use); a smooth fill (metrics.removal) saves most iterations on large holes.
        atol: also stop a system once its residual norm is below atol (0: never; metrics.removal
            sets one so that near-zero systems stop before float32 underflows into slow denormals).
    Returns:
        (N,C,H,W): kept pixels as in x, removed ones solved for (dtype and device of x).
    """
    if len(x) > CHUNK:  # small batches: a 3x3 convolution over 91 images is ~50x cheaper than over 819
        return torch.cat([linear_impute(x[i:i + CHUNK], removed[i:i + CHUNK], tol, max_iter, dtype,
                                        None if init is None else init[i:i + CHUNK], atol)
                          for i in range(0, len(x), CHUNK)])
    import torch.nn.functional as F

    n, c, h, w = x.shape
    xs = x.detach().to(dtype).reshape(n * c, 1, h, w)
    m = removed.detach().to(xs.device).repeat_interleave(c, 0).view(n * c, 1, h, w).to(dtype)
    k = _kernel(xs.dtype, xs.device)
    conv = lambda v: F.conv2d(v, k, padding=1)  # noqa: E731
    d = conv(torch.ones(1, 1, h, w, dtype=xs.dtype, device=xs.device))  # in-image neighbour weight sums
    op = lambda v: m * (d * v - conv(v))  # noqa: E731  (v is zero outside the removed pixels)
    rhs = m * conv(xs * (1 - m))
    v = torch.zeros_like(xs) if init is None else init.detach().to(xs).reshape(n * c, 1, h, w) * m
    r = rhs.clone() if init is None else rhs - op(v)
    p = r.clone()
    rr = (r * r).sum((1, 2, 3), keepdim=True)
    tiny = torch.finfo(dtype).tiny
    stop = ((tol ** 2) * (rhs * rhs).sum((1, 2, 3), keepdim=True)).clamp_min(max(tiny, atol ** 2))
    for _ in range(max_iter):
        if bool((rr <= stop).all()):
            break
        ap = op(p)
        alpha = rr / (p * ap).sum((1, 2, 3), keepdim=True).clamp_min(tiny)
        v = v + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum((1, 2, 3), keepdim=True)
        p = r + (rr_new / rr.clamp_min(tiny)) * p
        rr = rr_new
    out = xs * (1 - m) + v * m
    return out.view(n, c, h, w).to(x.dtype)


def linear_impute_exact(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The reference's construction and sparse direct solve (scipy spsolve), image by image: for tests."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    out = x.detach().clone().cpu()
    n, c, h, w = x.shape
    for i in range(n):
        mask = removed[i].cpu().numpy().ravel()
        img = x[i].detach().double().cpu().numpy().reshape(c, -1)
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            continue
        var = np.zeros(h * w, np.int64)
        var[idx] = np.arange(len(idx))
        a, b, diag = lil_matrix((len(idx), len(idx))), np.zeros((len(idx), c)), np.zeros(len(idx))
        for j, p in enumerate(idx):
            r0, c0 = divmod(int(p), w)
            for (dr, dc), weight in NEIGHBOURS:
                rr, cc = r0 + dr, c0 + dc
                if 0 <= rr < h and 0 <= cc < w:
                    diag[j] -= weight
                    q = rr * w + cc
                    if mask[q]:
                        a[j, var[q]] = weight
                    else:
                        b[j] -= weight * img[:, q]
        a.setdiag(diag)
        sol = spsolve(a.tocsc(), b).reshape(len(idx), c)
        flat = out[i].reshape(c, -1)
        flat[:, torch.from_numpy(idx)] = torch.from_numpy(sol.T).to(flat.dtype)
    return out.to(x.device)


def noisy_linear_impute(x: torch.Tensor, removed: torch.Tensor, noise: float = NOISE,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """`linear_impute` plus N(0, noise^2) on the imputed pixels (ROAD's NoisyLinearImputer)."""
    out = linear_impute(x, removed)
    if noise > 0:
        eps = torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
        out = torch.where(removed[:, None].to(out.device), out + noise * eps, out)
    return out


def _curves(b: AttrBatch, ctx: MetricContext, order: str, noise: float) -> torch.Tensor:
    """road_curves of a batch, computed once per (order, noise) for the three ROAD metrics."""
    cache = b.__dict__.setdefault("_road_curves", {})
    if (order, noise) not in cache:
        cache[(order, noise)] = road_curves(ctx.oracle, b.x, b.attr, b.explained, order, noise=noise, seed=ctx.seed)
    return cache[(order, noise)]


def road_curves(oracle, x: torch.Tensor, attr: torch.Tensor, explained: torch.Tensor, order: str = "morf",
                levels=LEVELS, noise: float = NOISE, seed: int = 0) -> torch.Tensor:
    """p(explained | x with `levels`% of pixels imputed) / p(explained | x): float64 (N, len(levels)).

    `order` "morf" removes the most relevant pixels first, "lerf" the least relevant first
    (ranks by attr summed over channels, stable ties as deletion/insertion).
    """
    if order not in ("morf", "lerf"):
        raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")
    n, _, h, w = x.shape
    rank = pixel_rank(attr).view(n, h, w)
    if order == "lerf":
        rank = h * w - 1 - rank
    gen = torch.Generator().manual_seed(int(seed))
    idx = explained.to(x.device).view(-1, 1)
    p0 = oracle.probs(x).gather(1, idx).squeeze(1).double().cpu()
    imputed = []
    for level in levels:
        removed = rank < int(round(h * w * level / 100))
        imputed.append(noisy_linear_impute(x, removed, noise, gen))
    p = oracle.probs(torch.cat(imputed)).gather(1, idx.repeat(len(levels), 1)).squeeze(1).double().cpu()
    return p.view(len(levels), n).T / p0[:, None]


@metric(ATTR_METRICS, higher_is_better=False, version="1", board=False,
        definition="ROAD MoRF (Rong et al. 2022): mean over 10..90% of the most relevant pixels removed by noisy "
                   "linear imputation (noise 0.01) of p(explained) / p(explained | x). Off the boards: they show "
                   "del_morf_road, the same operator on deletion's 28-px grid")
def road_morf(b: AttrBatch, ctx: MetricContext, noise: Annotated[float, Range("[0, 1]")] = NOISE) -> torch.Tensor:
    """ROAD, most relevant first (https://arxiv.org/abs/2202.00449): a quick drop is good.

    Args:
        noise: SD of the Gaussian noise added to imputed pixels (0.01 as the reference).
    Returns:
        float64 (N,); lower is better.
    """
    return _curves(b, ctx, "morf", noise).mean(1)


@metric(ATTR_METRICS, higher_is_better=True, version="1", board=False,
        definition="ROAD LeRF (Rong et al. 2022): as road_morf with the least relevant pixels removed first. "
                   "Off the boards (del_lerf_road)")
def road_lerf(b: AttrBatch, ctx: MetricContext, noise: Annotated[float, Range("[0, 1]")] = NOISE) -> torch.Tensor:
    """ROAD, least relevant first: removing what the map calls unimportant should keep the class.

    Args:
        noise: SD of the Gaussian noise added to imputed pixels.
    Returns:
        float64 (N,); higher is better.
    """
    return _curves(b, ctx, "lerf", noise).mean(1)


@metric(ATTR_METRICS, higher_is_better=True, version="1", board=False,
        definition="ROAD LeRF - MoRF (the SRG-style difference of the two orders' areas; same imputation and seed). Off the boards (srg_road)")
def road_srg(b: AttrBatch, ctx: MetricContext, noise: Annotated[float, Range("[0, 1]")] = NOISE) -> torch.Tensor:
    """LeRF minus MoRF area under ROAD's imputation: one score that rewards both orders.

    Args:
        noise: SD of the Gaussian noise added to imputed pixels.
    Returns:
        float64 (N,); higher is better.
    """
    return _curves(b, ctx, "lerf", noise).mean(1) - _curves(b, ctx, "morf", noise).mean(1)
