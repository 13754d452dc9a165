"""DeepLIFT family through captum: DeepLift (black baseline), DeepSHAP and GradientSHAP.

DeepLift and DeepLiftShap hook the model's ReLU and max-pool modules, so captum gets the
oracle's nn.Module view (`OracleModule`: forward through the oracle, hooks on the real
modules). DeepSHAP and GradientSHAP take their baselines from the training split: `fit`
draws `n_baselines` training images (seeded, uniformly at random) once, before the first
batch; calling them unfitted is an error. With `contrast` Q the margin
logit_target - logit_Q is explained.

Summation-to-delta, measured on the 84 errors of the earlier default-CNN checkpoint: DeepLift from the black baseline
is exact (|sum attr - (f(x)_t - f(0)_t)| < 1e-5), but captum's max-pool rule loses part of the
difference for image baselines: DeepSHAP's |sum attr - (f(x)_t - mean_b f(b)_t)| has median
2.1 logits against a median difference of 8.6. (captum issue #1276, the max-pool fallback
using the first row's gradient, was checked: fixing it changes nothing on this model.)
GradientSHAP's path points come from numpy's global RNG and its baseline picks from torch's;
both are seeded per call, so its maps depend on the batch composition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from captum.attr import DeepLift as CaptumDeepLift
from captum.attr import DeepLiftShap as CaptumDeepLiftShap
from captum.attr import GradientShap as CaptumGradientShap

from bench.contract import ConfigError, Range
from bench.contract.captum import (
    BATCH_ROWS,
    CaptumAdapter,
    OracleModule,
    forward_args,
    instance_chunks,
    logit_fn,
    seeded,
)
from solvers import ATTRIBUTIONS


@dataclass(frozen=True)
class DeepLiftParams:
    """Args:
    eps: captum's threshold below which a non-linearity's input change counts as zero.
    """

    eps: Annotated[float, Range("(0, 1]")] = 1e-10

    def __post_init__(self) -> None:
        if self.eps <= 0:
            raise ConfigError(f"eps must be > 0, got {self.eps!r}")


@dataclass(frozen=True)
class DeepShapParams:
    """Args:
    n_baselines: training images used as baselines; each instance costs 2 * n_baselines rows.
    seed: seed of the draw in `fit`.
    batch_rows: rows per model pass (instances are chunked: batch_rows // (2 * n_baselines)).
    """

    n_baselines: Annotated[int, Range("[1, 10000]")] = 32
    seed: Annotated[int, Range("[0, 2**32)")] = 0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("n_baselines", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class GradientShapParams:
    """Args:
    n_baselines: training images forming the baseline distribution.
    n_samples: (baseline, path point) samples per instance, i.e. gradient rows per instance.
    stdevs: std of Gaussian noise added to the inputs (0 = plain expected gradients).
    seed: seed of the baseline draw in `fit` and of captum's per-call sampling.
    batch_rows: rows per model pass (instances are chunked: batch_rows // n_samples).
    """

    n_baselines: Annotated[int, Range("[1, 10000]")] = 32
    n_samples: Annotated[int, Range("[1, 100000]")] = 32
    stdevs: Annotated[float, Range("[0, 10]")] = 0.0
    seed: Annotated[int, Range("[0, 2**32)")] = 0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("n_baselines", "n_samples", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        for key in ("stdevs", "seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")


class _FitsBaselines(CaptumAdapter):
    """Mixin: draw `n_baselines` training images in `fit`."""

    _background: torch.Tensor | None = None

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "_FitsBaselines":
        gen = torch.Generator().manual_seed(self.params.seed)
        idx = torch.randperm(len(x_train), generator=gen)[: self.params.n_baselines]
        self._background = x_train[idx].detach().to(self.oracle.device, torch.float32)
        return self

    def background(self) -> torch.Tensor:
        if self._background is None:
            raise RuntimeError(f"{self.registry_name}: call fit(x_train, y_train) first "
                               "(it draws the training-image baselines)")
        return self._background


@ATTRIBUTIONS.register()
class DeepLift(CaptumAdapter):
    """DeepLIFT (Rescale rule) from a black baseline, captum (Shrikumar et al. 2017)."""

    Params = DeepLiftParams
    version = "1"
    paper = "https://arxiv.org/abs/1704.02685"

    def attribute(self, x, target, contrast):
        dl = CaptumDeepLift(OracleModule(self.oracle), eps=self.params.eps)
        return dl.attribute(x, baselines=torch.zeros_like(x), target=target,
                            additional_forward_args=forward_args(contrast))


@ATTRIBUTIONS.register()
class DeepShap(_FitsBaselines):
    """DeepSHAP: DeepLift averaged over training-image baselines, captum DeepLiftShap (Lundberg & Lee 2017)."""

    Params = DeepShapParams
    version = "1"
    paper = "https://arxiv.org/abs/1705.07874"

    def attribute(self, x, target, contrast):
        p, bg = self.params, self.background()
        dls = CaptumDeepLiftShap(OracleModule(self.oracle))
        return torch.cat([
            dls.attribute(x[sl], baselines=bg, target=target[sl],
                          additional_forward_args=forward_args(None if contrast is None else contrast[sl]))
            for sl in instance_chunks(len(x), 2 * len(bg), p.batch_rows)])


@ATTRIBUTIONS.register()
class GradientShap(_FitsBaselines):
    """GradientSHAP (expected gradients) over training-image baselines, captum (Lundberg & Lee 2017)."""

    Params = GradientShapParams
    version = "1"
    paper = "https://arxiv.org/abs/1705.07874"

    def attribute(self, x, target, contrast):
        p, bg = self.params, self.background()
        gs = CaptumGradientShap(logit_fn(self.oracle))
        with seeded(p.seed, x.device):
            return torch.cat([
                gs.attribute(x[sl], baselines=bg, n_samples=p.n_samples, stdevs=p.stdevs,
                             target=target[sl],
                             additional_forward_args=forward_args(None if contrast is None else contrast[sl]))
                for sl in instance_chunks(len(x), p.n_samples, p.batch_rows)])
