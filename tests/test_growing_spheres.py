"""Growing Spheres: the log-space sampler's geometry and law, and the solver on real errors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from bench.contract.oracle import GradientRefused
from solvers import SOLVERS
from solvers._growing_spheres_impl import greedy_sparsify, ring_radii, sample_layer
from solvers.growing_spheres import GrowingSpheres

D = 784
RINGS = [(0.0, 0.1), (0.1, 0.2), (1.0, 1.5), (5.0, 5.01), (20.0, 28.0)]


def _offsets(a: float, b: float, n: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    lo, hi = torch.full((n,), a, dtype=torch.float64), torch.full((n,), b, dtype=torch.float64)
    return sample_layer(lo, hi, D, gen)


def _cdf(m: float, a: float, b: float, d: int = D) -> float:
    """(m^d - a^d) / (b^d - a^d), divided through by b^d so nothing under- or overflows."""
    t = math.exp(d * math.log(a / b)) if a > 0 else 0.0
    return (math.exp(d * math.log(m / b)) - t) / (1.0 - t)


@pytest.mark.parametrize("a,b", RINGS)
def test_every_sample_lies_in_its_ring_and_off_the_centre(a, b):
    centre = torch.full((1, D), 0.5)
    off = _offsets(a, b, 2000)
    r = off.double().norm(dim=1)
    assert off.dtype == torch.float32 and off.shape == (2000, D)
    assert (r >= a * (1 - 1e-5)).all() and (r <= b * (1 + 1e-5)).all()
    assert ((centre + off) != centre).any(dim=1).all()  # r**784 would put these on the centre


def test_radii_never_form_r_to_the_d():
    lo = torch.tensor([0.0, 0.1, 1.0, 20.0], dtype=torch.float64)
    hi = torch.tensor([0.1, 0.2, 1.5, 28.0], dtype=torch.float64)
    for u in (1e-300, 1e-9, 0.5, 1.0):
        r = ring_radii(lo, hi, D, torch.full((4,), u, dtype=torch.float64))
        assert torch.isfinite(r).all() and (r >= lo).all() and (r <= hi).all() and (r > 0).all()
    naive = torch.tensor([0.1, 28.0], dtype=torch.float64) ** D  # what the reference computes with
    assert naive[0] == 0 and torch.isinf(naive[1])


@pytest.mark.parametrize("a,b", RINGS)
def test_radius_law_is_uniform_in_volume(a, b):
    n = 20000
    r = _offsets(a, b, n, seed=1).double().norm(dim=1)
    t = math.exp(D * math.log(a / b)) if a > 0 else 0.0
    for q in (0.2, 0.5, 0.8):
        m = b * math.exp(math.log(t + q * (1 - t)) / D)  # a radius inside the ring's bulk
        expected = _cdf(m, a, b)
        assert abs((r < m).double().mean().item() - expected) < 4 * math.sqrt(0.25 / n) + 1e-3


def test_directions_are_uniform_on_the_sphere():
    n = 8000
    u = _offsets(1.0, 1.0, n, seed=2).double()
    assert torch.allclose(u.norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-5)
    assert 0.8 < n * u.mean(0).pow(2).sum().item() < 1.2  # ||mean||^2 ~ 1/n for a centred law
    var = u.var(0)  # every coordinate: variance 1/d
    assert (var * D - 1).abs().max().item() < 0.15
    v = torch.randn(D, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    proj = (u @ (v / v.norm())) * math.sqrt(D)  # ~ N(0, 1) in high dimension
    assert stats.kstest(proj.numpy(), "norm").pvalue > 1e-3


def test_registered_black_box():
    assert SOLVERS.get("growing_spheres") is GrowingSpheres
    assert GrowingSpheres.white_box is False and GrowingSpheres.paper


def test_black_box_oracle_refuses_gradients(oracle, errors):
    bb = oracle.black_box()
    with pytest.raises(GradientRefused):
        bb.logits_grad(errors.x[:2])
    GrowingSpheres(bb)  # binds to a black-box oracle without complaint


def test_solver_on_real_errors(oracle, errors):
    x, target = errors.x[:3], errors.true[:3]
    solver = GrowingSpheres(oracle.black_box(), n_in_layer=100, first_radius=1.0, max_queries=2500)
    oracle.start(len(x))
    res = solver(x, target)
    queries, grad_queries = oracle.queries.clone(), oracle.grad_queries.clone()
    assert res.x_cf.shape == x.shape and res.x_cf.dtype == x.dtype and res.x_cf.device == x.device
    assert res.x_cf.min() >= 0 and res.x_cf.max() <= 1
    assert res.success.dtype == torch.bool and res.success.any()
    assert torch.equal(res.success, oracle.predict(res.x_cf) == target)
    assert (queries > 0).all() and (queries <= 2500).all() and (grad_queries == 0).all()
    assert queries.tolist() == res.info["queries_self"]  # every sampled point was charged
    for ok, why, l2, l2_enemy in zip(res.success.tolist(), res.reason,
                                     (res.x_cf - x).flatten(1).norm(dim=1).tolist(), res.info["l2_enemy"],
                                     strict=True):
        assert (why == "") == ok
        if ok:  # the sparsifier only reverts coordinates toward x
            assert l2 <= l2_enemy + 1e-5
    assert torch.equal(res.x_cf[~res.success], x[~res.success])


def test_budget_and_radius_failures_are_values(oracle, errors):
    x, target = errors.x[:3], errors.true[:3]
    oracle.start(3)
    res = GrowingSpheres(oracle.black_box(), n_in_layer=100, max_queries=50)(x, target)
    assert not res.success.any() and all("budget" in r for r in res.reason)
    assert (oracle.queries <= 50).all() and torch.equal(res.x_cf, x)
    res = GrowingSpheres(oracle.black_box(), n_in_layer=20, first_radius=0.01, max_radius=0.03)(x, target)
    assert all(ok or "max_radius" in r for ok, r in zip(res.success.tolist(), res.reason, strict=True))


def test_already_in_target_costs_two_queries(oracle, errors):
    x, pred = errors.x[:3], errors.pred[:3]
    oracle.start(3)
    res = GrowingSpheres(oracle.black_box())(x, pred)
    assert res.success.all() and torch.equal(res.x_cf, x)
    assert oracle.queries.tolist() == [2.0, 2.0, 2.0]  # the check of x and the final re-check


def test_batched_sparsifier_matches_the_reference_loop(oracle, errors, mnist):
    """The galloping batch walk takes exactly the reference's sequential decisions."""
    x, target = errors.x[:2].flatten(1), errors.true[:2]
    pool_x, pool_y = mnist.test.x[:500], mnist.test.y[:500]
    pred = oracle.predict(pool_x)
    x_cf = torch.stack([pool_x[((pool_y == t) & (pred == t)).nonzero()[0, 0]].flatten() for t in target.tolist()])
    out, spent, finished = greedy_sparsify(oracle, x, target, x_cf, torch.arange(2),
                                           torch.full((2,), 10_000), 64, (1, 28, 28))
    assert finished.all() and (spent > 0).all()
    for i in range(2):  # the reference: one coordinate, one query at a time
        ref = x_cf[i].clone()
        delta = (x_cf[i] - x[i]).abs()
        for k in sorted(delta.nonzero().squeeze(1).tolist(), key=lambda c: (delta[c].item(), c)):
            trial = ref.clone()
            trial[k] = x[i, k]
            if oracle.predict(trial.view(1, 1, 28, 28)).item() == target[i].item():
                ref = trial
        assert torch.equal(out[i], ref)
