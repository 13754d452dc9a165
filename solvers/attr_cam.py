"""Class-activation maps on the oracle's CAM layer (default: the last conv), upsampled to 28x28.

gradcam          captum LayerGradCam: ReLU(sum_k mean(d s / d A^k) A^k), s = logit_target.
guided_gradcam   captum GuidedGradCam: Guided Backprop times the upsampled Grad-CAM.
scorecam         Score-CAM (Wang et al. 2020), batched here (captum has none): each channel's
                 activation, rectified (the paper's maps are post-ReLU; a no-op on a ReLU or
                 pooling layer) and upsampled, is min-max normalised to [0,1] and masks x; its
                 weight is the softmax probability of the target on the masked image (as in
                 the authors' code: no baseline subtraction; constant channels get weight 0);
                 map = ReLU(sum_k w_k * upsampled A^k). K masked rows per instance.
contrast_cam     "Why P, rather than Q?" (Prabhushankar et al. 2020): Grad-CAM whose score is
                 the loss between the prediction and the contrast class Q. loss="ce" (default,
                 as in the authors' code, olivesgatech/Explanatory-Paradigms ContrastCAM)
                 back-propagates CE(logits, Q) = logsumexp(logits) - logit_Q; loss="margin"
                 back-propagates logit_target - logit_Q.
counterfactual_cam  "What if P were absent?" (Selvaraju et al. 2017, sec. counterfactual;
                 Prabhushankar & AlRegib's paradigms): Grad-CAM with negated gradients, i.e.
                 score -logit_target (-(logit_target - logit_Q) when a contrast Q is given):
                 the evidence against the target, regions whose removal would make the model
                 more confident in it (with Q: more sure of target over Q).
Contrast: gradcam, guided_gradcam explain the logit margin, scorecam the probability margin
p_target - p_Q; contrast_cam uses Q natively and, without one, takes the runner-up class
(highest logit other than target; one counted query per instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from captum.attr import GuidedGradCam as CaptumGuidedGradCam
from captum.attr import LayerAttribution, LayerGradCam

from bench.contract.captum import (
    BATCH_ROWS,
    CaptumAdapter,
    OracleModule,
    forward_args,
    instance_chunks,
    logit_fn,
)
from bench.contract.params import ConfigError, Range
from solvers import ATTRIBUTIONS

GRADCAM = "https://arxiv.org/abs/1610.02391"


@dataclass(frozen=True)
class CamParams:
    """Args:
    layer: module name of the CAM layer; "" = oracle.named_layer_for_cam() (the last conv).
    relu: keep positive evidence only (Grad-CAM's ReLU); guided_gradcam always applies it.
    interpolate_mode: upsampling of the layer map to the input ("bilinear" as in the papers).
    """

    layer: str = ""
    relu: bool = True
    interpolate_mode: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolate_mode not in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
            raise ConfigError(f"interpolate_mode must be nearest | nearest-exact | bilinear | bicubic | area, "
                              f"got {self.interpolate_mode!r}")


@dataclass(frozen=True)
class ContrastCamParams(CamParams):
    """Args (besides CamParams'): loss: "ce" = CE(logits, Q) (authors' code) or "margin"."""

    loss: str = "ce"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in ("ce", "margin"):
            raise ConfigError(f"loss must be 'ce' or 'margin', got {self.loss!r}")


@dataclass(frozen=True)
class ScoreCamParams:
    """Args:
    layer: module name of the CAM layer; "" = oracle.named_layer_for_cam().
    interpolate_mode: upsampling of activations to the input size.
    rectify: ReLU the activations first (on the pre-ReLU conv2 output of the default CNN,
        unrectified maps made every Score-CAM map of the 84 errors all-zero).
    batch_rows: masked images per model pass (instances chunked: batch_rows // channels).
    """

    layer: str = ""
    interpolate_mode: str = "bilinear"
    rectify: bool = True
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS

    def __post_init__(self) -> None:
        if self.batch_rows < 1:
            raise ConfigError(f"batch_rows must be >= 1, got {self.batch_rows!r}")
        if self.interpolate_mode not in ("nearest", "nearest-exact", "bilinear", "bicubic", "area"):
            raise ConfigError(f"interpolate_mode must be nearest | nearest-exact | bilinear | bicubic | area, "
                              f"got {self.interpolate_mode!r}")


def _pick(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, cls.view(-1, 1)).squeeze(1)


class _Cam(CaptumAdapter):
    """Grad-CAM on a per-row score function `score_fn(x, *args)`, upsampled to the input."""

    Params = CamParams
    version = "1"
    paper = GRADCAM

    def _layer(self):
        return self.oracle.layer(self.params.layer or self.oracle.named_layer_for_cam())

    def _cam(self, x, score_fn, target, args) -> torch.Tensor:
        cam = LayerGradCam(score_fn, self._layer()).attribute(
            x, target=target, additional_forward_args=args, relu_attributions=self.params.relu)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), self.params.interpolate_mode)


@ATTRIBUTIONS.register()
class GradCam(_Cam):
    """Grad-CAM on the last conv layer, upsampled to the input, captum (Selvaraju et al. 2017)."""

    def attribute(self, x, target, contrast):
        return self._cam(x, logit_fn(self.oracle), target, forward_args(contrast))


@ATTRIBUTIONS.register()
class GuidedGradCam(_Cam):
    """Guided Grad-CAM: Guided Backprop times upsampled Grad-CAM, captum (Selvaraju et al. 2017)."""

    def attribute(self, x, target, contrast):
        ggc = CaptumGuidedGradCam(OracleModule(self.oracle), self._layer())
        return ggc.attribute(x, target=target, additional_forward_args=forward_args(contrast),
                             interpolate_mode=self.params.interpolate_mode)


@ATTRIBUTIONS.register()
class ContrastCam(_Cam):
    """Contrast-CAM, "why P rather than Q": Grad-CAM of the loss toward Q (Prabhushankar et al. 2020)."""

    Params = ContrastCamParams
    paper = "https://arxiv.org/abs/2008.00178"
    contrastive = True
    contrast_mode = "native"

    def attribute(self, x, target, contrast):
        if contrast is None:  # runner-up class
            contrast = self.oracle.logits(x).scatter(1, target.view(-1, 1), float("-inf")).argmax(1)
        logit = logit_fn(self.oracle)
        ce = self.params.loss == "ce"

        def score(x, t, q):
            z = logit(x)
            return F.cross_entropy(z, q, reduction="none") if ce else _pick(z, t) - _pick(z, q)

        return self._cam(x, score, None, (target, contrast))


@ATTRIBUTIONS.register()
class CounterfactualCam(_Cam):
    """Counterfactual Grad-CAM, "what if P were absent": Grad-CAM with negated gradients (Selvaraju et al. 2017)."""

    paper = "https://arxiv.org/abs/2202.11838"
    contrastive = True
    contrast_mode = "native"

    def attribute(self, x, target, contrast):
        logit = logit_fn(self.oracle)

        def score(x, t, q=None):
            z = logit(x)
            return -(_pick(z, t) - (0.0 if q is None else _pick(z, q)))

        return self._cam(x, score, None, (target,) if contrast is None else (target, contrast))


@ATTRIBUTIONS.register()
class ScoreCam(CaptumAdapter):
    """Score-CAM: channel maps weighted by the target probability of the masked input (Wang et al. 2020)."""

    Params = ScoreCamParams
    version = "1"
    uses_gradients = False
    paper = "https://arxiv.org/abs/1910.01279"

    def attribute(self, x, target, contrast):
        p = self.params
        layer = self.oracle.layer(p.layer or self.oracle.named_layer_for_cam())
        acts: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
        try:
            self.oracle.logits(x)
        finally:
            handle.remove()
        act = torch.cat(acts).relu() if p.rectify else torch.cat(acts)
        up = F.interpolate(act, size=tuple(x.shape[-2:]), mode=p.interpolate_mode)
        n, k = up.shape[:2]
        lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
        masks = (up - lo) / (hi - lo).clamp_min(1e-12)
        weight = torch.zeros(n, k, device=x.device)
        for sl in instance_chunks(n, k, p.batch_rows):
            rows = (x[sl, None] * masks[sl, :, None]).reshape(-1, *x.shape[1:])
            owner = torch.arange(sl.start, sl.stop).repeat_interleave(k)
            prob = self.oracle.probs(rows, owner=owner).view(-1, k, self.oracle.n_classes)
            w = prob.gather(2, target[sl].view(-1, 1, 1).expand(-1, k, 1)).squeeze(2)
            if contrast is not None:
                w = w - prob.gather(2, contrast[sl].view(-1, 1, 1).expand(-1, k, 1)).squeeze(2)
            weight[sl] = w
        weight = weight * (hi > lo).view(n, k)
        return F.relu((weight[:, :, None, None] * up).sum(1, keepdim=True))
