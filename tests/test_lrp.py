"""LRP through zennit: a hand-computed LRP-epsilon case, pixel-space scaling, counting, contrast, timm backbones.

The attribution contract (shape, dtype, counted gradients, contrast) is tested for every
registered method in test_attributions.py; here are the known answers.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.contract.models import Normalized
from bench.contract.oracle import Oracle
from solvers import ATTRIBUTIONS

pytest.importorskip("zennit")

EPS = 1e-6


def tiny_model(mean: float, std: float) -> tuple[nn.Module, nn.Linear, nn.Linear]:
    """Normalized(flatten -> dense 4->3 -> ReLU -> dense 3->2), small fixed weights (one hidden unit inactive)."""
    fc1, fc2 = nn.Linear(4, 3), nn.Linear(3, 2)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 1.5], [-1.0, 1.0, 2.0, -0.5], [0.5, 0.5, -3.0, -1.0]]))
        fc1.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        fc2.weight.copy_(torch.tensor([[2.0, -1.0, 1.0], [-0.5, 1.5, 0.5]]))
        fc2.bias.copy_(torch.tensor([0.25, -0.1]))
    net = nn.Sequential(nn.Flatten(), fc1, nn.ReLU(), fc2)
    return Normalized(net, mean, std, cam_layer="1").eval(), fc1, fc2


def hand_lrp_epsilon(x_in: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear, t: int) -> torch.Tensor:
    """LRP-epsilon written out: R_out = z_t; R_j = a_j w2_tj z_t / s(z_t); R_i = sum_j x_i w1_ji R_j / s(h_j),
    with s(v) = v + eps * sign(v) (sign(0) = +1) and the ReLU passing R_j where it is active."""
    s = lambda v: v + EPS * (1.0 if v >= 0 else -1.0)  # noqa: E731
    h = [float(fc1.weight[j] @ x_in + fc1.bias[j]) for j in range(3)]
    a = [max(v, 0.0) for v in h]
    z = sum(float(fc2.weight[t, j]) * a[j] for j in range(3)) + float(fc2.bias[t])
    r_hidden = [a[j] * float(fc2.weight[t, j]) * z / s(z) for j in range(3)]
    return torch.tensor([sum(float(x_in[i]) * float(fc1.weight[j, i]) * r_hidden[j] / s(h[j])
                             for j in range(3) if h[j] > 0) for i in range(4)])


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (0.5, 2.0)])
def test_lrp_epsilon_equals_the_hand_computed_relevance(mean, std):
    model, fc1, fc2 = tiny_model(mean, std)
    x = torch.tensor([[[[0.9, 0.2, 0.6, 0.4]]], [[[0.1, 0.8, 0.3, 0.7]]]])  # (2,1,1,4) pixels in [0,1]
    target = torch.tensor([0, 1])
    oracle = Oracle(model, "cpu", fast=False)
    oracle.start(2)
    attr = ATTRIBUTIONS.get("lrp_epsilon")(oracle, epsilon=EPS)(x, target).attr
    for i in range(2):
        x_in = (x[i].flatten() - mean) / std  # what the first dense layer sees; each pixel keeps its relevance
        want = hand_lrp_epsilon(x_in, fc1, fc2, int(target[i]))
        assert torch.allclose(attr[i].flatten(), want, atol=1e-5), (attr[i].flatten(), want)
    assert oracle.queries.tolist() == [1.0, 1.0] and oracle.grad_queries.tolist() == [1.0, 1.0]


def test_lrp_contrast_is_the_difference_of_two_maps(oracle, errors):
    """The modified backward pass is linear in its seed: the margin map is R(target) - R(contrast)."""
    x, t, q = errors.x[:4], errors.pred[:4], errors.true[:4]
    method = ATTRIBUTIONS.get("lrp_epsilon_plus_flat")(oracle)
    both = method(x, t, q).attr
    assert torch.allclose(both, method(x, t).attr - method(x, q).attr, atol=1e-5)


def test_lrp_epsilon_on_the_cnn_sums_to_about_the_logit(oracle, cnn, errors):
    """Biases absorb (or add) a little relevance; the rest of the logit reaches the pixels."""
    x, t = errors.x[:8], errors.pred[:8]
    attr = ATTRIBUTIONS.get("lrp_epsilon")(oracle)(x, t).attr
    with torch.no_grad():
        z = cnn[0](x).gather(1, t.view(-1, 1)).squeeze(1)
    ratio = attr.flatten(1).sum(1) / z
    assert ((ratio > 0.8) & (ratio < 1.25)).all(), ratio


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_lrp_on_resnet_cbam_runs_but_canonizes_only_plain_batchnorm():
    """zennit's SequentialMergeBatchNorm merges the 13 plain BatchNorm2d of resnet_cbam into their convs,
    not the 4 timm BatchNormAct2d of CBAM's spatial gates (not leaf modules: they hold drop/act children);
    the maps are finite, and the model is unchanged afterwards."""
    from zennit.canonizers import SequentialMergeBatchNorm

    from bench.models.timm_backbones import build_resnet_cbam

    torch.manual_seed(0)
    model = build_resnet_cbam().eval()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    merged = SequentialMergeBatchNorm().apply(model)
    try:
        merged_ids = {id(c.batch_norm) for c in merged}
    finally:
        for c in merged:
            c.remove()
    left = [type(m).__name__ for m in bns if id(m) not in merged_ids]
    assert len(bns) == 17 and len(merged) == 13 and left == ["BatchNormAct2d"] * 4
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        before = model(x)
    oracle = Oracle(model, "cpu")
    for name in ("lrp_epsilon", "lrp_epsilon_plus_flat", "lrp_alpha2beta1"):
        oracle.start(3)
        attr = ATTRIBUTIONS.get(name)(oracle)(x, before.argmax(1)).attr
        assert attr.shape == x.shape and torch.isfinite(attr).all() and attr.abs().sum() > 0
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-6)
