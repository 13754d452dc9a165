"""Exact small cases for every counterfactual metric (pinned definitions)."""

import math
import sys

import pytest
import torch

import metrics.counterfactual as M
from bench.contract.metrics import CFBatch
from metrics import CF_METRICS


def batch(x, x_cf, target=None, probs=None):
    n = len(x)
    target = torch.zeros(n, dtype=torch.long) if target is None else target
    probs = torch.full((n, 10), 0.1) if probs is None else probs
    z = torch.zeros(n, dtype=torch.float64)
    return CFBatch(x, x_cf, target, probs, z + 7, z + 3, z + 0.5)


def test_l2_is_root_of_sum_of_squares_not_squared():
    x = torch.zeros(1, 1, 28, 28)
    x_cf = x.clone()
    x_cf[0, 0, 0, 0], x_cf[0, 0, 5, 5] = 0.3, 0.4  # 3-4-5 triangle
    b = batch(x, x_cf)
    assert M.l2(b).item() == pytest.approx(0.5)
    assert M.l1(b).item() == pytest.approx(0.7)
    assert M.l0(b).item() == 2
    assert M.sparsity(b).item() == pytest.approx(2 / 784)


def test_l0_threshold_is_1e_3():
    x = torch.zeros(1, 1, 28, 28)
    x_cf = x.clone()
    x_cf[0, 0, 0, :3] = torch.tensor([5e-4, 2e-3, 0.5])
    assert M.l0(batch(x, x_cf)).item() == 2


def test_tv_of_constant_delta_is_zero_and_of_a_step_is_its_edge():
    x = torch.rand(2, 1, 28, 28) * 0.5
    assert M.tv(batch(x, x + 0.25)).tolist() == pytest.approx([0.0, 0.0], abs=1e-4)
    x = torch.zeros(1, 1, 28, 28)
    x_cf = x.clone()
    x_cf[0, 0, :, 14:] = 1.0  # a vertical edge: 28 horizontal jumps of 1
    assert M.tv(batch(x, x_cf)).item() == pytest.approx(28.0)
    x_cf = x.clone()
    x_cf[0, 0, 10, 10] = 1.0  # a single pixel: 4 jumps
    assert M.tv(batch(x, x_cf)).item() == pytest.approx(4.0)


def test_validity_and_target_prob_follow_the_probabilities():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    x = torch.zeros(2, 1, 28, 28)
    b = batch(x, x, target=torch.tensor([1, 1]), probs=probs)
    assert M.validity(b).tolist() == [1.0, 0.0]
    assert M.target_prob(b).tolist() == pytest.approx([0.7, 0.3])


def test_cost_metrics_pass_the_oracle_counts_through():
    x = torch.zeros(3, 1, 28, 28)
    b = batch(x, x)
    assert M.queries(b).tolist() == [7, 7, 7]
    assert M.grad_queries(b).tolist() == [3, 3, 3]
    assert M.seconds(b).tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("name", CF_METRICS.names())
def test_every_cf_metric_has_metadata(name):
    fn = CF_METRICS.get(name)
    assert isinstance(fn.higher_is_better, bool)
    assert fn.version and fn.definition
    assert fn.__doc__, "a docstring pins the definition"
    assert "http" in sys.modules[fn.__module__].__doc__, "the module cites its paper"


def test_metrics_return_float64_cpu_vectors():
    x = torch.rand(4, 1, 28, 28)
    b = batch(x, (x + 0.1).clamp(0, 1))
    for name in ["validity", "target_prob", "l2", "l1", "l0", "sparsity", "tv", "queries", "grad_queries", "seconds"]:
        out = CF_METRICS.get(name)(b, None)
        assert out.shape == (4,) and out.dtype == torch.float64 and out.device.type == "cpu", name
        assert all(math.isfinite(v) for v in out.tolist())
