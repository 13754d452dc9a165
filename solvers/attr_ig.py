"""Integrated Gradients (Sundararajan et al. 2017) with the baselines of the IG-baselines thesis.

IG_i(x) = (x_i - b_i) * integral_0^1 d logit_target(b + a (x - b)) / dx_i da, computed by
captum with a Gauss-Legendre rule. The variants differ only in the baseline b
(Sturmfels, Lundberg & Lee 2020, https://distill.pub/2020/attribution-baselines/):
  ig           zeros (a black image)
  ig_blur      Gaussian blur of x (sigma `sigma`, reflect padding, kernel truncated at 3 sigma)
  ig_uniform   U[0,1] noise per pixel
  ig_gaussian  x + N(0, sigma^2) noise, clipped to [0,1]
  ig_maxdist   per pixel the farthest value in [0,1]: 1 where x < 0.5 else 0
  ig_multi_mean / ig_multi_median   `n_baselines` U[0,1] baselines; per-pixel mean / median
               (torch.quantile 0.5, the interpolated median) of the IG maps.
Random baselines are drawn per row from (seed, the row's bytes): batching does not change them.
With `contrast` Q the margin logit_target - logit_Q is integrated instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from captum.attr import IntegratedGradients as CaptumIG

from bench.contract import ConfigError, Range
from bench.contract.captum import (
    BATCH_ROWS,
    CaptumAdapter,
    forward_args,
    instance_chunks,
    logit_fn,
    row_noise,
)
from solvers import ATTRIBUTIONS

PAPER = "https://arxiv.org/abs/1703.01365"


@dataclass(frozen=True)
class IGParams:
    """Args:
    n_steps: points on the path. Measured on the 84 errors of the earlier default-CNN checkpoint (zero baseline),
        the completeness gap |sum attr - (f(x)_t - f(0)_t)| / |f(x)_t - f(0)_t| with
        Gauss-Legendre is median 0.5% / max 2% at 32 steps, 0.3% / 1.7% at 50, 0.25% / 0.9%
        at 64; riemann_trapezoid needs 64 steps for 1.6% median. 32 halves the cost of 64.
    method: captum's integration rule ("gausslegendre", "riemann_trapezoid", ...).
    batch_rows: rows per model pass (captum's internal_batch_size; instances are chunked to fit).
    """

    n_steps: Annotated[int, Range("[1, 100000]")] = 32
    method: str = "gausslegendre"
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("n_steps", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.method not in ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"):
            raise ConfigError(f"method must be gausslegendre | riemann_trapezoid | riemann_left | riemann_right | "
                              f"riemann_middle, got {self.method!r}")


@dataclass(frozen=True)
class IGBlurParams(IGParams):
    """Args (besides IGParams'): sigma: Gaussian blur std in pixels. At 4 the blurred errors
    carry little class evidence (median p(pred) 0.11; 0.13 at sigma 3, 0.23 at sigma 2)."""

    sigma: Annotated[float, Range("(0, 100]")] = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sigma <= 0:
            raise ConfigError(f"sigma must be > 0, got {self.sigma!r}")


@dataclass(frozen=True)
class IGSeedParams(IGParams):
    """Args (besides IGParams'): seed: seed of the random baseline."""

    seed: Annotated[int, Range("[0, 2**32)")] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class IGGaussianParams(IGParams):
    """Args (besides IGParams'): sigma: noise std in pixel units (at 0.3 the baseline keeps the
    predicted class for about half the errors: a local baseline); seed: noise seed."""

    sigma: Annotated[float, Range("[0, 10]")] = 0.3
    seed: Annotated[int, Range("[0, 2**32)")] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("sigma", "seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class IGMultiParams(IGParams):
    """Args (besides IGParams'): n_baselines: uniform baselines per instance; seed: their seed."""

    n_baselines: Annotated[int, Range("[1, 10000]")] = 8
    seed: Annotated[int, Range("[0, 2**32)")] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_baselines < 1:
            raise ConfigError(f"n_baselines must be >= 1, got {self.n_baselines!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N,C,H,W) images, reflect padding, kernel radius ceil(3 sigma)."""
    if sigma <= 0:
        return x.clone()
    radius = min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1)
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


@ATTRIBUTIONS.register()
class IntegratedGradients(CaptumAdapter):
    """Integrated Gradients from a black (zero) baseline, captum (Sundararajan et al. 2017)."""

    Params = IGParams
    version = "1"
    paper = PAPER
    aggregate = "mean"

    def baselines(self, x: torch.Tensor) -> torch.Tensor:
        """Baselines for x, shaped (K,N,C,H,W)."""
        return torch.zeros_like(x)[None]

    def attribute(self, x, target, contrast):
        p = self.params
        b = self.baselines(x)
        k = len(b)
        xs, bs = x.repeat(k, 1, 1, 1), b.reshape(-1, *x.shape[1:])
        ts = target.repeat(k)
        cs = None if contrast is None else contrast.repeat(k)
        ig = CaptumIG(logit_fn(self.oracle))
        out = [ig.attribute(xs[sl], baselines=bs[sl], target=ts[sl],
                            additional_forward_args=forward_args(None if cs is None else cs[sl]),
                            n_steps=p.n_steps, method=p.method, internal_batch_size=p.batch_rows)
               for sl in instance_chunks(len(xs), p.n_steps, p.batch_rows)]
        attr = torch.cat(out).reshape(k, *x.shape)
        return attr.mean(0) if self.aggregate == "mean" else attr.quantile(0.5, dim=0)


@ATTRIBUTIONS.register()
class IGBlur(IntegratedGradients):
    """Integrated Gradients from a Gaussian-blurred copy of x (Sturmfels et al. 2020)."""

    Params = IGBlurParams
    paper = "https://distill.pub/2020/attribution-baselines/"

    def baselines(self, x):
        return gaussian_blur(x, self.params.sigma)[None]


@ATTRIBUTIONS.register()
class IGUniform(IntegratedGradients):
    """Integrated Gradients from a seeded U[0,1] noise image (Sturmfels et al. 2020)."""

    Params = IGSeedParams
    paper = "https://distill.pub/2020/attribution-baselines/"

    def baselines(self, x):
        return row_noise(x, self.params.seed)


@ATTRIBUTIONS.register()
class IGGaussian(IntegratedGradients):
    """Integrated Gradients from x plus seeded Gaussian noise, clipped to [0,1] (Sturmfels et al. 2020)."""

    Params = IGGaussianParams
    paper = "https://distill.pub/2020/attribution-baselines/"

    def baselines(self, x):
        return (x[None] + self.params.sigma * row_noise(x, self.params.seed, kind="randn")).clamp(0, 1)


@ATTRIBUTIONS.register()
class IGMaxDist(IntegratedGradients):
    """Integrated Gradients from the maximum-distance image: 1 where x < 0.5, else 0 (Sturmfels et al. 2020)."""

    Params = IGParams
    paper = "https://distill.pub/2020/attribution-baselines/"

    def baselines(self, x):
        return (x < 0.5).to(x.dtype)[None]


@ATTRIBUTIONS.register()
class IGMultiMean(IntegratedGradients):
    """Integrated Gradients averaged over `n_baselines` seeded U[0,1] baselines (Sturmfels et al. 2020)."""

    Params = IGMultiParams
    paper = "https://distill.pub/2020/attribution-baselines/"

    def baselines(self, x):
        return row_noise(x, self.params.seed, k=self.params.n_baselines)


@ATTRIBUTIONS.register()
class IGMultiMedian(IGMultiMean):
    """Per-pixel median of Integrated Gradients over `n_baselines` seeded U[0,1] baselines."""

    aggregate = "median"
