"""Perturbation attributions through captum: Occlusion, LIME and KernelSHAP (black-box queries only).

Occlusion slides a `window` x `window` patch of value `baseline` with stride `stride` and
records the drop of logit_target. LIME and KernelSHAP work on a patch feature mask: the
28x28 image is cut into `patch` x `patch` squares (patch 4 -> 7 x 7 = 49 features, row-major
ids); a removed feature is set to 0 (black); each instance gets its own surrogate fitted on
`n_samples` perturbed copies (captum loops over the instances of a batch). Attributions are
the surrogate's coefficients painted back onto each patch. The surrogate fits run with BLAS
limited to one thread: a 256 x 49 least-squares fit took 380 ms with OpenBLAS's 2 threads on
the shared 2-core machine and 3.4 ms with one. With `contrast` Q the margin
logit_target - logit_Q is explained. Sampling is seeded (the global RNGs are forked) once
per call, so LIME / KernelSHAP samples depend on the batch composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from captum._utils.models.linear_model import SkLearnLasso
from captum.attr import KernelShap as CaptumKernelShap
from captum.attr import Lime as CaptumLime
from captum.attr import Occlusion as CaptumOcclusion
from captum.attr._core.lime import get_exp_kernel_similarity_function
from threadpoolctl import threadpool_limits

from bench.contract import ConfigError, Range
from bench.contract.captum import BATCH_ROWS, CaptumAdapter, forward_args, logit_fn, seeded
from solvers import ATTRIBUTIONS


@dataclass(frozen=True)
class OcclusionParams:
    """Args:
    window: side of the square occluding patch in pixels.
    stride: step between patch positions (4/2 -> 13 x 13 = 169 rows per instance).
    baseline: value written into the occluded patch (0 = black background).
    batch_rows: rows per model pass (captum's perturbations_per_eval = batch_rows // N).
    """

    window: Annotated[int, Range("[1, 1024]")] = 4
    stride: Annotated[int, Range("[1, 1024]")] = 2
    baseline: Annotated[float, Range("[0, 1]")] = 0.0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("window", "stride", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if not 0 <= self.baseline <= 1:
            raise ConfigError(f"baseline must be a pixel value in [0, 1], got {self.baseline!r}")


@dataclass(frozen=True)
class LimeParams:
    """Args:
    patch: side of a feature patch in pixels (4 -> 49 features).
    n_samples: perturbed copies per instance (rows per instance).
    alpha: L1 weight of the Lasso surrogate (captum's default 0.01).
    kernel_width: width of the exponential kernel on cosine distance (captum's default 1.0).
    seed: seed of the perturbation sampling.
    batch_rows: rows per model pass (captum's perturbations_per_eval, at most n_samples).
    """

    patch: Annotated[int, Range("[1, 1024]")] = 4
    n_samples: Annotated[int, Range("[1, 10**6]")] = 256
    alpha: Annotated[float, Range("[0, 1e6]")] = 0.01
    kernel_width: Annotated[float, Range("(0, 1e6]")] = 1.0
    seed: Annotated[int, Range("[0, 2**32)")] = 0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("patch", "n_samples", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.kernel_width <= 0:
            raise ConfigError(f"kernel_width must be > 0, got {self.kernel_width!r}")
        for key in ("alpha", "seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class KernelShapParams:
    """Args:
    patch: side of a feature patch in pixels (4 -> 49 features).
    n_samples: coalitions sampled per instance (rows per instance).
    seed: seed of the coalition sampling.
    batch_rows: rows per model pass (captum's perturbations_per_eval, at most n_samples).
    """

    patch: Annotated[int, Range("[1, 1024]")] = 4
    n_samples: Annotated[int, Range("[1, 10**6]")] = 256
    seed: Annotated[int, Range("[0, 2**32)")] = 0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("patch", "n_samples", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")


def patch_mask(shape: torch.Size, patch: int, device: torch.device) -> torch.Tensor:
    """Feature ids of `patch` x `patch` squares, row-major, shaped (1,1,H,W) (ceil at the borders)."""
    h, w = shape[-2:]
    rows = torch.arange(h, device=device) // patch
    cols = torch.arange(w, device=device) // patch
    return (rows[:, None] * math.ceil(w / patch) + cols[None, :]).view(1, 1, h, w)


@ATTRIBUTIONS.register()
class Occlusion(CaptumAdapter):
    """Occlusion: logit drop when a sliding patch is blacked out, captum (Zeiler & Fergus 2014)."""

    Params = OcclusionParams
    version = "1"
    white_box = False
    uses_gradients = False
    paper = "https://arxiv.org/abs/1311.2901"

    def attribute(self, x, target, contrast):
        p = self.params
        occ = CaptumOcclusion(logit_fn(self.oracle, grad=False))
        return occ.attribute(x, sliding_window_shapes=(x.shape[1], p.window, p.window),
                             strides=(x.shape[1], p.stride, p.stride), baselines=p.baseline,
                             target=target, additional_forward_args=forward_args(contrast),
                             perturbations_per_eval=max(1, p.batch_rows // len(x)))


@ATTRIBUTIONS.register()
class Lime(CaptumAdapter):
    """LIME on 4x4-patch features with a Lasso surrogate, captum (Ribeiro et al. 2016)."""

    Params = LimeParams
    version = "1"
    white_box = False
    uses_gradients = False
    paper = "https://arxiv.org/abs/1602.04938"

    def attribute(self, x, target, contrast):
        p = self.params
        lime = CaptumLime(logit_fn(self.oracle, grad=False), interpretable_model=SkLearnLasso(alpha=p.alpha),
                          similarity_func=get_exp_kernel_similarity_function("cosine", p.kernel_width))
        with seeded(p.seed, x.device), threadpool_limits(1, user_api="blas"):
            return lime.attribute(x, target=target, additional_forward_args=forward_args(contrast),
                                  feature_mask=patch_mask(x.shape, p.patch, x.device),
                                  n_samples=p.n_samples,
                                  perturbations_per_eval=max(1, min(p.n_samples, p.batch_rows)))


@ATTRIBUTIONS.register()
class KernelShap(CaptumAdapter):
    """KernelSHAP on 4x4-patch features, captum (Lundberg & Lee 2017)."""

    Params = KernelShapParams
    version = "1"
    white_box = False
    uses_gradients = False
    paper = "https://arxiv.org/abs/1705.07874"

    def attribute(self, x, target, contrast):
        p = self.params
        with seeded(p.seed, x.device), threadpool_limits(1, user_api="blas"):
            return CaptumKernelShap(logit_fn(self.oracle, grad=False)).attribute(
                x, target=target, additional_forward_args=forward_args(contrast),
                feature_mask=patch_mask(x.shape, p.patch, x.device), n_samples=p.n_samples,
                perturbations_per_eval=max(1, min(p.n_samples, p.batch_rows)))
