"""Layer-wise Relevance Propagation through zennit: LRP-epsilon, EpsilonPlusFlat, EpsilonAlpha2Beta1.

LRP (Bach et al. 2015, https://doi.org/10.1371/journal.pone.0130140) redistributes the explained
score backwards layer by layer with a rule per layer; zennit (https://github.com/chr5tphr/zennit)
implements the rules as gradient hooks on the model's modules, so one forward and one modified
backward pass per row give the map (counted by the oracle: 1 query, 1 gradient query). The
output relevance is the explained logit itself (R_out = z_target at the target, 0 elsewhere),
so relevance is in logit units; with `contrast` Q the margin z_target - z_Q is explained (the
backward pass is linear in its seed: the seed e_target z_target - e_Q z_Q).

- lrp_epsilon: the epsilon rule R_i = sum_j a_i w_ij / (z_j + eps sign(z_j)) R_j on every conv
  and dense layer (ReLU and max-pool pass relevance as their gradient).
- lrp_epsilon_plus_flat: zennit's EpsilonPlusFlat (recommended for CNNs by Kohlbrenner et al.
  2020, https://arxiv.org/abs/1910.09840): flat rule on the first layer, z+ on the other convs,
  epsilon on dense layers.
- lrp_alpha2beta1: zennit's EpsilonAlpha2Beta1: alpha-beta (alpha 2, beta 1) on convs, epsilon
  on dense layers (alpha-beta on the last dense layer would ignore the logit's sign).

Pixel space. bench models take [0,1] pixels and normalise inside (`Normalized`: (x - mean) / std,
a scalar affine map, no module). Zennit's relevance is that of the first layer's input, the
normalised pixel; autograd then multiplies it by 1/std on its way to x, so the map is
multiplied back by std: each pixel keeps its own relevance (pixel and normalised pixel are one
to one). BatchNorm layers are merged into their preceding convolution by zennit's
SequentialMergeBatchNorm canonizer (module order conv -> BN); see the README for what it cannot
canonize in the timm backbones (residual sums and attention products are left to the gradient).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Annotated

import torch

from bench.contract import Range
from bench.contract.captum import BATCH_ROWS, CaptumAdapter, instance_chunks
from solvers import ATTRIBUTIONS


@dataclass(frozen=True)
class LrpParams:
    """Args:
    epsilon: the epsilon rule's stabiliser (zennit's default 1e-6; larger values absorb weak relevance).
    canonize: merge BatchNorm into the preceding convolution (zennit SequentialMergeBatchNorm);
        a model without BatchNorm is unchanged.
    batch_rows: rows per model pass.
    """

    epsilon: Annotated[float, Range("(0, 1000]")] = 1e-6
    canonize: bool = True
    batch_rows: Annotated[int, Range("[1, 2**20]")] = BATCH_ROWS


def seed_relevance(logits: torch.Tensor, target: torch.Tensor, contrast: torch.Tensor | None) -> torch.Tensor:
    """The output relevance: z_target at the target (minus z_Q at the contrast class Q), 0 elsewhere."""
    z = logits.detach()
    seed = torch.zeros_like(z).scatter(1, target.view(-1, 1), z.gather(1, target.view(-1, 1)))
    if contrast is not None:
        seed = seed.scatter_add(1, contrast.view(-1, 1), -z.gather(1, contrast.view(-1, 1)))
    return seed


class _Lrp(CaptumAdapter):
    """Common LRP call path: the composite on the oracle's model, counted forward, modified backward."""

    Params = LrpParams
    version = "1"
    paper = "https://doi.org/10.1371/journal.pone.0130140"

    @abc.abstractmethod
    def composite(self):
        """The zennit composite (rules per layer type, canonizers) of this method."""

    def canonizers(self) -> list:
        from zennit.canonizers import SequentialMergeBatchNorm

        return [SequentialMergeBatchNorm()] if self.params.canonize else []

    def attribute(self, x, target, contrast):
        model = self.oracle.layer("")
        std = getattr(model, "std", None)
        scale = float(std) if isinstance(std, torch.Tensor) and std.numel() == 1 else 1.0
        out = torch.empty_like(x)
        composite = self.composite()
        with composite.context(model):
            for sl in instance_chunks(len(x), 1, self.params.batch_rows):
                xc = x[sl].clone().requires_grad_(True)
                owner = torch.arange(sl.start, sl.stop)
                logits = self.oracle.logits_grad(xc, owner=owner)
                seed = seed_relevance(logits, target[sl], None if contrast is None else contrast[sl])
                (grad,) = torch.autograd.grad(logits, xc, grad_outputs=seed)
                out[sl] = grad * scale
        return out


@ATTRIBUTIONS.register()
class LrpEpsilon(_Lrp):
    """LRP-epsilon on every convolution and dense layer (zennit), R_out = the explained logit."""

    def composite(self):
        from zennit.composites import LayerMapComposite, layer_map_base
        from zennit.rules import Epsilon
        from zennit.types import Linear  # zennit's type for every conv and dense layer

        return LayerMapComposite(layer_map=layer_map_base() + [(Linear, Epsilon(epsilon=self.params.epsilon))],
                                 canonizers=self.canonizers())


@ATTRIBUTIONS.register()
class LrpEpsilonPlusFlat(_Lrp):
    """zennit EpsilonPlusFlat: flat first layer, z+ convolutions, epsilon dense layers."""

    paper = "https://arxiv.org/abs/1910.09840"

    def composite(self):
        from zennit.composites import EpsilonPlusFlat

        return EpsilonPlusFlat(epsilon=self.params.epsilon, canonizers=self.canonizers())


@ATTRIBUTIONS.register()
class LrpAlpha2Beta1(_Lrp):
    """zennit EpsilonAlpha2Beta1: alpha-beta (2, 1) convolutions, epsilon dense layers."""

    def composite(self):
        from zennit.composites import EpsilonAlpha2Beta1

        return EpsilonAlpha2Beta1(epsilon=self.params.epsilon, canonizers=self.canonizers())
