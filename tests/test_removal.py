"""Removal operators x orders (metrics/removal.py): exact small cases, symmetries, agreement, the real model."""

from __future__ import annotations

import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import ATTR_METRICS
from metrics.deletion_insertion import auc, deletion_auc, insertion_auc
from metrics.operators import OPERATORS, remove, smooth_fill
from metrics.removal import p0_auc, removal_curves
from metrics.road import linear_impute, linear_impute_exact
from solvers import ATTRIBUTIONS

NAMES = [f"{w}_{op}" for op in OPERATORS for w in ("del_morf", "del_lerf", "srg")]


class MeanOracle:
    """p(class 0) = the image's mean pixel, p(class 1) = the rest: curves known by hand."""

    def probs(self, x):
        s = x.flatten(1).mean(1)
        return torch.stack([s, 1 - s], 1)


def _ctx(oracle):
    return MetricContext(oracle=oracle)


def test_a_known_curve_and_p0_normalisation():
    attr = torch.tensor([4.0, 3.0, 2.0, 1.0]).view(1, 1, 2, 2)
    explained = torch.tensor([0])
    ones = torch.ones(1, 1, 2, 2)
    curve = removal_curves(MeanOracle(), ones, attr, explained, "zeros", step=1)
    assert torch.allclose(curve, torch.tensor([[1.0, 0.75, 0.5, 0.25, 0.0]], dtype=torch.float64))
    assert float(auc(curve)[0]) == pytest.approx(0.5)
    half = removal_curves(MeanOracle(), ones / 2, attr, explained, "zeros", step=1)
    assert float(auc(half)[0]) == pytest.approx(0.25)  # half as confident: half the raw area
    assert float(p0_auc(half, half[:, 0])[0]) == pytest.approx(0.5)  # the same after p0
    b = AttrBatch(ones / 2, attr, explained, torch.zeros(1))
    assert float(ATTR_METRICS.get("del_morf_zeros")(b, _ctx(MeanOracle()), step=1)[0]) == pytest.approx(0.5)


def test_an_operator_that_changes_nothing_scores_one(oracle, errors):
    x, explained = errors.x[:4], errors.pred[:4]
    curve = removal_curves(oracle, x, torch.rand_like(x), explained, lambda x, m, g: x)
    assert torch.allclose(p0_auc(curve, curve[:, 0]), torch.ones(4, dtype=torch.float64))


def test_lerf_is_morf_of_the_reversed_map(oracle, errors):
    """The inverse control: LeRF deletion of attr == MoRF deletion of -attr (a map without ties)."""
    x, explained = errors.x[:6], errors.pred[:6]
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    for op in ("zeros", "road"):
        lerf = removal_curves(oracle, x, attr, explained, op, "lerf")
        assert torch.equal(lerf, removal_curves(oracle, x, -attr, explained, op, "morf"))


def test_insertion_passes_through_lerf_deletion_in_reverse(oracle, errors):
    x, explained = errors.x[:6], errors.pred[:6]
    attr = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    for op in ("zeros", "blur", "mean"):
        ins = removal_curves(oracle, x, attr, explained, op, "morf", "insertion")
        assert torch.equal(ins, removal_curves(oracle, x, attr, explained, op, "lerf").flip(1))


def test_unnormalised_morf_zeros_is_deletion_auc_and_lerf_blur_is_insertion_auc(oracle, errors):
    x, explained = errors.x[:12], errors.pred[:12]
    attr = ATTRIBUTIONS.get("saliency")(oracle)(x, explained, None).attr
    b, ctx = AttrBatch(x, attr, explained, torch.zeros(12)), _ctx(oracle)
    morf = removal_curves(oracle, x, attr, explained, "zeros", "morf")
    assert torch.allclose(auc(morf), deletion_auc(b, ctx), atol=1e-12)
    lerf_blur = removal_curves(oracle, x, attr, explained, "blur", "lerf")
    assert torch.allclose(auc(lerf_blur), insertion_auc(b, ctx), atol=1e-6)
    p0 = oracle.probs(x).gather(1, explained.view(-1, 1)).squeeze(1).double()
    assert torch.allclose(morf[:, 0], p0)
    assert torch.allclose(ATTR_METRICS.get("del_morf_zeros")(b, ctx), auc(morf) / p0)
    srg = ATTR_METRICS.get("srg_zeros")(b, ctx)
    assert torch.allclose(srg, ATTR_METRICS.get("del_lerf_zeros")(b, ctx) - ATTR_METRICS.get("del_morf_zeros")(b, ctx))


def test_the_road_operator_keeps_kept_pixels_and_solves_roads_system(errors):
    x = errors.x[:4]
    removed = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(2)) < torch.tensor([0.2, 0.5, 0.8, 0.97]).view(4, 1, 1)
    out = remove(x, removed, "road", noise=0.0)
    keep = ~removed[:, None]
    assert torch.equal(out[keep], x[keep])
    assert float((out - linear_impute_exact(x, removed)).abs().max()) < 1e-3  # a tenth of ROAD's noise SD
    start = linear_impute(x, removed, init=smooth_fill(x, removed))  # the smooth start changes no answer
    assert float((start - linear_impute_exact(x, removed)).abs().max()) < 1e-4
    noisy = remove(x, removed, "road", generator=torch.Generator().manual_seed(0))
    assert 0.005 < float((noisy - out)[~keep].std()) < 0.02
    with pytest.raises(ValueError, match="operator"):
        remove(x, removed, "sideways")


@pytest.mark.parametrize("name", NAMES)
def test_metadata(name):
    fn = ATTR_METRICS.get(name)
    assert fn.kind == "mean" and fn.version == "1" and fn.definition and "https://arxiv.org" in fn.__doc__
    assert fn.higher_is_better == (not name.startswith("del_morf"))


def test_saliency_beats_the_random_map_on_morf_deletion_under_road(oracle, errors):
    x, explained = errors.x[:32], errors.pred[:32]
    ctx = _ctx(oracle)
    scores = {}
    for method in ("saliency", "random"):
        attr = ATTRIBUTIONS.get(method)(oracle)(x, explained, None).attr
        scores[method] = ATTR_METRICS.get("del_morf_road")(AttrBatch(x, attr, explained, torch.zeros(32)), ctx)
    diff = scores["random"] - scores["saliency"]
    assert float(diff.mean()) > 0.05 and float((diff > 0).float().mean()) > 0.7
