"""Localisation against a known ground-truth mask: does the map sit on the pixels that carry the label?

The controlled sets (bench.data.controlled) know, per image, which pixels carry the label
(`mask`, bool like x); the harness hands it over as `AttrBatch.mask` / `CFBatch.mask`. Every
metric here declares needs=("mask",), raises a ValueError on a batch whose mask is None, and is
off the default boards (`board=False`): a board of data without masks could not score it; the
controlled sets' presets name these metrics.

Six attribution scores through Quantus 0.6's localisation metrics (Hedström et al. 2023,
https://jmlr.org/papers/v24/22-0142.html), the mask passed as Quantus' `s_batch`, per chunk of
rows. What is set, for all six:
- normalise=True with per-sample max |a| (metrics._quantus_impl.NORM; Quantus' default divides
  the whole batch by one max). Every score here is invariant to scaling a map by a positive
  number, so it changes no score; it is set so nothing depends on batch-mates.
- no model: localisation reads only maps and masks, so Quantus gets model=None (a stand-in for
  ctx.oracle below); softmax is irrelevant (False).
- ties: Quantus ranks with `np.argsort(-a)`, stable inside run_quantus, so tied pixels keep
  raster order (top-left first). This decides top-k and rank accuracy for maps with flat regions
  (a constant map takes the first |mask| pixels in raster order; see the tests).
- a row with an empty mask scores NaN (Quantus' PointingGame writes NaN into a bool array,
  i.e. True: an empty mask would score a hit).
- Quantus refuses (AssertionError) a chunk whose maps are all one value, all 0 or all < 0.

Sign, per metric (the papers' maps are non-negative, so each is read as its paper reads it):
- signed (abs=False, Quantus' default): pointing game and top-k intersection ask whether the
  map's strongest evidence *for* the explained class lies on the truth (Excitation Backprop's and
  Grad-CAM's maps are positive evidence).
- positive part: attribution localisation, as Kohlbrenner et al. define it (positive relevance in
  / positive relevance in total).
- magnitude |a| (abs=True): rank accuracy, mass accuracy and AUC ask where the map says anything,
  for or against; Arras et al.'s released evaluation code sums |R| (clevr-xai eval/util.py
  calc_overlap). This keeps mass accuracy distinct from attribution localisation.

Chance (a random map, iid per pixel): mask share |mask| / 784 for pointing game, attribution
localisation, top-k, rank and mass accuracy (16/784 = 0.0204 on the decoy sets, 0.5 on
mnist-distractor); 0.5 for AUC.

`cf_mask_share` is the counterfactual analogue: the share of a counterfactual's change (L1) that
falls inside the mask.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

import torch

from bench.contract.metrics import AttrBatch, CFBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS, CF_METRICS
from metrics._quantus_impl import NORM, as_scores, run_quantus

# top-k's fixed k: 16 = the 4x4 patch of the decoy sets (bench.data.controlled.PATCH ** 2), the
# smallest mask of the controlled sets, so a perfect map reaches 1 on every set (k > |mask| caps
# the score at |mask| / k); k = |mask| instead would make it rank accuracy on every set, and here
# it coincides with it only where |mask| = 16 (decoy sets; on mnist-distractor, |mask| = 392, it is
# the precision of the map's 16 strongest pixels, 2% of 784).
TOP_K = 16
NEEDS_MASK = "Off the boards: it needs a ground-truth mask (the controlled sets' presets name it)"


class _NoModel:
    """ctx.oracle's stand-in for run_quantus: localisation never evaluates a model."""

    device = "cpu"

    @staticmethod
    def unwrap():
        return None


_NO_MODEL = _NoModel()


def mask_of(b: AttrBatch | CFBatch, name: str) -> torch.Tensor:
    """b.mask as a CPU bool tensor shaped like b.x; a ValueError when b has none."""
    if b.mask is None:
        raise ValueError(f"{name} scores against a ground-truth mask and this batch has none (mask is None): "
                         f"score it on data with one (bench.data.controlled: mnist-distractor, mnist-decoy, "
                         f"mnist-decoy-shortcut)")
    if tuple(b.mask.shape) != tuple(b.x.shape):
        raise ValueError(f"{name}: mask {tuple(b.mask.shape)} is not shaped like x {tuple(b.x.shape)}")
    return b.mask.detach().bool().cpu()


def _loc(quantus_name: str, name: str, b: AttrBatch, ctx: MetricContext | None, init: dict,
         attr: torch.Tensor | None = None) -> torch.Tensor:
    """quantus.<quantus_name>(**init, per-sample normalise) on b's maps (or `attr`) against b.mask: float64 (N,)."""
    mask = mask_of(b, name)
    s = mask.numpy()
    if attr is not None:
        b = dataclasses.replace(b, attr=attr)
    ctx = dataclasses.replace(ctx if ctx is not None else MetricContext(), oracle=_NO_MODEL)
    outs = run_quantus(quantus_name, b, ctx, dict(init, **NORM), softmax=False,
                       call=lambda m, args, rows: m(**args, s_batch=s[rows]))
    scores = as_scores(outs)
    scores[~mask.flatten(1).any(1)] = float("nan")
    return scores


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1", kind="proportion",
        definition="Quantus PointingGame: 1 if the map's (signed) maximum, any of its tied maxima, lies in the "
                   f"ground-truth mask. {NEEDS_MASK}")
def loc_pointing_game(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Pointing game (Zhang et al. 2018, https://arxiv.org/abs/1608.00507).

    Quantus PointingGame: weighted=False (a plain hit, not discounted by the mask's size),
    abs=False (the peak of evidence for the class), per-sample normalise. Zhang et al.'s 15-pixel
    tolerance (on 224x224) has no Quantus counterpart and none here: on 28x28 it would cover the
    4x4 patch many times over. Quantus counts a hit when any pixel equal to the maximum lies in
    the mask, so a constant map scores 1. Returns (N,) of 0/1; chance = mask share.
    """
    return _loc("PointingGame", "loc_pointing_game", b, ctx, dict(weighted=False, abs=False))


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1",
        definition="Quantus AttributionLocalisation: positive attribution inside the ground-truth mask / all "
                   f"positive attribution. {NEEDS_MASK}")
def loc_attribution_localisation(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Attribution localisation (Kohlbrenner et al. 2020, https://arxiv.org/abs/1910.09840), unweighted.

    Quantus AttributionLocalisation on the map's positive part max(a, 0): Kohlbrenner et al.'s
    ratio of positive relevance inside the mask to positive relevance in total. The map is clipped
    here and passed with abs=True (a no-op on it): Quantus' own positive_attributions=True only
    bites with abs=False, and that constructor prints a warning to stdout on every call.
    weighted=False (Quantus' weighted variant multiplies by |mask| / size, where 0.6 takes the size
    of x_batch[2:], i.e. of the batch less two rows), max_size=1.0 (only a warning threshold),
    per-sample normalise. Quantus adds 1e-9 to the denominator: a map all inside scores 1 - ~1e-9,
    a map with no positive value 0. Returns (N,) in [0, 1]; chance = mask share.
    """
    init = dict(weighted=False, max_size=1.0, positive_attributions=True, abs=True)
    return _loc("AttributionLocalisation", "loc_attribution_localisation", b, ctx, init, attr=b.attr.clamp(min=0))


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1",
        definition=f"Quantus TopKIntersection: share of the map's {TOP_K} highest (signed) pixels inside the "
                   f"ground-truth mask. {NEEDS_MASK}")
def loc_top_k_intersection(b: AttrBatch, ctx: MetricContext,
                           k: Annotated[int, Range("[1, 784]")] = TOP_K) -> torch.Tensor:
    """Top-k intersection (Theiner et al. 2021, https://arxiv.org/abs/2104.14995).

    Quantus TopKIntersection: k=16 (TOP_K: the smallest controlled mask, so 1 is reachable on
    every set; Quantus' 1000 exceeds 784), concept_influence=False (a share in [0, 1], not the
    share over the mask's share), abs=False (the k most positive pixels), per-sample normalise.
    Ties in raster order. Returns (N,) in [0, 1]; chance = mask share.
    """
    init = dict(k=int(k), concept_influence=False, abs=False)
    return _loc("TopKIntersection", "loc_top_k_intersection", b, ctx, init)


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1",
        definition="Quantus RelevanceRankAccuracy: share of the |mask| pixels of highest |attr| inside the "
                   f"ground-truth mask. {NEEDS_MASK}")
def loc_relevance_rank_accuracy(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Relevance rank accuracy (Arras et al. 2022, https://arxiv.org/abs/2003.07258).

    Quantus RelevanceRankAccuracy: K = the row's mask size (Quantus, as the paper), abs=True
    (magnitude, as the authors' code), per-sample normalise. Ties in raster order. Returns (N,)
    in [0, 1]; chance = mask share.
    """
    return _loc("RelevanceRankAccuracy", "loc_relevance_rank_accuracy", b, ctx, dict(abs=True))


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1",
        definition=f"Quantus RelevanceMassAccuracy: sum |attr| inside the ground-truth mask / sum |attr|. {NEEDS_MASK}")
def loc_relevance_mass_accuracy(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Relevance mass accuracy (Arras et al. 2022, https://arxiv.org/abs/2003.07258).

    Quantus RelevanceMassAccuracy: abs=True (the authors' code sums |R|), per-sample normalise;
    no epsilon, so an all-zero map gives NaN. Returns (N,) in [0, 1]; chance = mask share.
    """
    return _loc("RelevanceMassAccuracy", "loc_relevance_mass_accuracy", b, ctx, dict(abs=True))


@metric(ATTR_METRICS, needs=("mask",), board=False, higher_is_better=True, version="1",
        definition=f"Quantus AUC: ROC AUC of |attr| as a per-pixel score for the ground-truth mask (0.5 = chance). {NEEDS_MASK}")
def loc_auc(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Localisation AUC (ROC analysis: Fawcett 2006, https://doi.org/10.1016/j.patrec.2005.10.010).

    Quantus AUC: sklearn's roc_curve/auc of the map's pixels against the mask, abs=True
    (magnitude, like rank and mass accuracy), per-sample normalise. Ties are handled by
    roc_curve (no raster order): a constant map scores exactly 0.5. Returns (N,) in [0, 1].
    """
    return _loc("AUC", "loc_auc", b, ctx, dict(abs=True))


@metric(CF_METRICS, needs=("mask",), board=False, higher_is_better=True, valid_only=True, version="1",
        definition=f"sum |x_cf - x| inside the ground-truth mask / sum |x_cf - x| (NaN when x_cf = x). {NEEDS_MASK}")
def cf_mask_share(b: CFBatch, ctx: MetricContext | None = None) -> torch.Tensor:
    """Share of the counterfactual's change (L1, pixel space) inside the mask: 1 all inside, 0 all outside.

    A counterfactual that changes nothing has no share: NaN. Chance for a change spread evenly
    over the image = mask share. Returns float64 (N,).
    """
    mask = mask_of(b, "cf_mask_share").flatten(1)
    d = (b.x_cf - b.x).detach().abs().flatten(1).double().cpu()
    total = d.sum(1)
    inside = (d * mask).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(torch.float64).tiny),
                       torch.full_like(total, float("nan")))
