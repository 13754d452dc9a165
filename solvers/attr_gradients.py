"""Plain-gradient attributions through captum: Saliency, Input x Gradient, SmoothGrad, Guided Backprop.

Each explains logit_target (the pre-softmax score, as in the papers), or with `contrast` Q the
margin logit_target - logit_Q (see bench/contract/captum.py). One gradient row per instance,
except SmoothGrad (`n_samples` rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from captum.attr import GuidedBackprop as CaptumGuidedBackprop
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import NoiseTunnel
from captum.attr import Saliency as CaptumSaliency

from bench.contract import ConfigError, Range
from bench.contract.captum import BATCH_ROWS, CaptumAdapter, OracleModule, forward_args, logit_fn, seeded
from bench.contract.methods import NoParams
from solvers import ATTRIBUTIONS


@dataclass(frozen=True)
class SaliencyParams:
    """Args:
    absolute: |gradient| (Simonyan et al.'s magnitude map); False keeps the signed gradient.
    """

    absolute: bool = True


@dataclass(frozen=True)
class SmoothGradParams:
    """Args:
    n_samples: noisy copies averaged per instance (Smilkov et al. use 50).
    sigma: noise standard deviation in pixel units; 0.15 = 15% of the [0,1] range, inside
        the paper's recommended 10-20%. Noisy inputs are not clipped (as in the paper).
    absolute: average |gradient| (captum Saliency's default, the paper's visualised maps).
    seed: seed of the noise (the global RNG is forked, so callers' RNG state is untouched);
        captum draws the noise for the whole batch, so maps depend on the batch composition.
    batch_rows: rows per model pass; captum's nt_samples_batch_size = batch_rows // N.
    """

    n_samples: Annotated[int, Range("[1, 100000]")] = 50
    sigma: Annotated[float, Range("[0, 10]")] = 0.15
    absolute: bool = True
    seed: Annotated[int, Range("[0, 2**32)")] = 0
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        for key in ("n_samples", "batch_rows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        for key in ("sigma", "seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")


@ATTRIBUTIONS.register()
class Saliency(CaptumAdapter):
    """Vanilla gradient magnitude |d logit_target / dx| (Simonyan et al. 2014)."""

    Params = SaliencyParams
    version = "1"
    paper = "https://arxiv.org/abs/1312.6034"

    def attribute(self, x, target, contrast):
        return CaptumSaliency(logit_fn(self.oracle)).attribute(
            x, target=target, abs=self.params.absolute, additional_forward_args=forward_args(contrast))


@ATTRIBUTIONS.register()
class InputXGradient(CaptumAdapter):
    """Input times gradient x * d logit_target / dx (Shrikumar et al. 2016)."""

    Params = NoParams
    version = "1"
    paper = "https://arxiv.org/abs/1605.01713"

    def attribute(self, x, target, contrast):
        return CaptumInputXGradient(logit_fn(self.oracle)).attribute(
            x, target=target, additional_forward_args=forward_args(contrast))


@ATTRIBUTIONS.register()
class SmoothGrad(CaptumAdapter):
    """SmoothGrad: Saliency averaged over Gaussian-noised copies, captum NoiseTunnel (Smilkov et al. 2017)."""

    Params = SmoothGradParams
    version = "1"
    paper = "https://arxiv.org/abs/1706.03825"

    def attribute(self, x, target, contrast):
        p = self.params
        nt = NoiseTunnel(CaptumSaliency(logit_fn(self.oracle)))
        with seeded(p.seed, x.device):
            return nt.attribute(
                x, nt_type="smoothgrad", nt_samples=p.n_samples, stdevs=p.sigma,
                nt_samples_batch_size=max(1, p.batch_rows // len(x)), target=target,
                abs=p.absolute, additional_forward_args=forward_args(contrast))


@ATTRIBUTIONS.register()
class GuidedBackprop(CaptumAdapter):
    """Guided Backpropagation: gradient with negative ReLU gradients zeroed (Springenberg et al. 2015)."""

    Params = NoParams
    version = "1"
    paper = "https://arxiv.org/abs/1412.6806"

    def attribute(self, x, target, contrast):
        return CaptumGuidedBackprop(OracleModule(self.oracle)).attribute(
            x, target=target, additional_forward_args=forward_args(contrast))
