"""metrics.quantus_randomisation (fast MPRT and RandomLogit) against Quantus 0.6 itself.

The reference is metrics.quantus_reference (mprt_layers, random_logit), which runs Quantus in
128-row chunks. On real errors of the real default CNN, with real methods from the registry.

Tolerances. With the same explain calls (N <= 128: one chunk, one call per layer on both
sides) the maps are bit-identical and so are the similarities: the fast Spearman's rank sums
are exact in float64 and its last steps follow np.corrcoef's, the fast SSIM does skimage's
float32 operations in the same order; only a float64 mean's summation order may differ
across builds, so 1e-12. Above 128 rows the reference explains 128 + rest rows and the fast
path all rows at once; a conv's float32 result can depend on the batch size (oneDNN's
algorithm choice), so the maps may differ by float32 rounding (~1e-7 relative) and the SSIM
by about as much: 1e-6 there.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import quantus_randomisation as fast
from metrics import quantus_reference as reference
from metrics import similarity
from metrics._quantus_impl import foreground_spearman
from solvers import ATTRIBUTIONS

LAYERS = ["original", "net.fc2", "net.fc1", "net.conv2", "net.conv1"]  # the default CNN, top-down


def method_fn(oracle, name):
    cls = ATTRIBUTIONS.get(name)
    m = cls(oracle if cls.white_box else oracle.black_box())
    return lambda x, t: m(x, t).attr


def make_batch(errors, n, explain, rows=None):
    rows = torch.arange(n) % len(errors.x) if rows is None else rows
    x, t = errors.x[rows], errors.pred[rows]
    return AttrBatch(x=x, attr=explain(x, t), explained=t, seconds=torch.zeros(len(x)), explain_fn=explain)


def counted(fn):
    def wrapped(x, t):
        wrapped.calls += 1
        return fn(x, t)

    wrapped.calls = 0
    return wrapped


def assert_same(got, want, atol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))  # NaN in the same rows
    np.testing.assert_allclose(got, want, rtol=0, atol=atol, equal_nan=True)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture()
def ctx(oracle):
    return MetricContext(oracle=oracle, seed=0)


# -- equality with Quantus -------------------------------------------------------------------------

@pytest.mark.parametrize("name,n", [("saliency", 24), ("gradcam", 40)])
def test_mprt_layers_equal_quantus(oracle, errors, ctx, name, n):
    """gradcam's maps are constant (all 0) on the foreground of some rows: NaN there on both sides."""
    b = make_batch(errors, n, method_fn(oracle, name))
    want = reference.mprt_layers(b, ctx)
    got = fast.mprt_layers(b, ctx, constant="nan")
    assert list(got) == list(want) == LAYERS
    for k in want:
        assert_same(got[k], want[k], 1e-12)
    if name == "gradcam":
        assert any(bool(v.isnan().any()) for v in want.values())  # the NaN rows are exercised
    if name == "saliency":
        assert_same(fast.mprt(b, ctx, constant="nan"), reference.mprt(b, ctx), 1e-12)
    randomised = torch.stack([want[k] for k in LAYERS[1:]], 1)  # q_mprt's reductions of the same layers
    assert_same(fast.mprt(b, ctx, constant="nan"), randomised.mean(1), 1e-12)
    assert_same(fast.mprt(b, ctx, constant="nan", reduce="last"), randomised[:, -1], 1e-12)


def test_mprt_with_explain_model_fn_and_other_orders_equal_quantus(oracle, errors, ctx):
    """explain_model_fn gets the randomised copy itself; bottom_up / independent / all pixels too."""
    def saliency_on(model, x, t):
        x = x.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(x).gather(1, t.view(-1, 1)).sum(), x)
        return g.abs()

    b = make_batch(errors, 8, lambda x, t: saliency_on(oracle.unwrap(), x, t))
    before = state(oracle.unwrap())
    for kw in (dict(explain_model_fn=saliency_on), dict(layer_order="bottom_up"),
               dict(layer_order="independent", foreground=False)):
        want, got = reference.mprt_layers(b, ctx, **kw), fast.mprt_layers(b, ctx, constant="nan", **kw)
        assert list(got) == list(want)
        for k in want:
            assert_same(got[k], want[k], 1e-12)
    assert all(torch.equal(before[k], v) for k, v in oracle.unwrap().state_dict().items())


def test_a_method_drawing_from_the_global_rngs_sees_quantus_draws(oracle, errors, ctx):
    """N <= 128: the seeds (ctx.seed, then seed + 1 before each layer's reset) and the order of the
    explain calls are Quantus', so noise from numpy's and torch's global RNGs is drawn identically."""
    saliency = method_fn(oracle, "saliency")

    def noisy(x, t):
        noise = torch.rand_like(x) + torch.from_numpy(np.random.random_sample(tuple(x.shape))).float()
        return saliency(x, t) + 1e-3 * noise

    b = make_batch(errors, 16, noisy)
    want, got = reference.mprt_layers(b, ctx), fast.mprt_layers(b, ctx, constant="nan")
    for k in want:
        assert_same(got[k], want[k], 1e-12)
    assert_same(fast.mprt(b, ctx, constant="nan", original=True), reference.mprt(b, ctx), 1e-12)
    assert_same(fast.random_logit(b, ctx), reference.random_logit(b, ctx), 1e-12)


@pytest.mark.parametrize("name", ["saliency", "gradcam"])
def test_random_logit_equals_quantus_across_chunks(oracle, errors, ctx, name):
    """182 rows: the reference runs two Quantus calls (128 + 54), each re-drawing its classes from seed."""
    explain = counted(method_fn(oracle, name))
    b = make_batch(errors, 182, explain)
    want = reference.random_logit(b, ctx)
    explain.calls = 0
    got = fast.random_logit(b, ctx)
    assert explain.calls == 1  # all rows in one explain call
    assert_same(got, want, 1e-6)
    small = make_batch(errors, 40, explain)  # one chunk: the very same call on both sides
    assert_same(fast.random_logit(small, ctx), reference.random_logit(small, ctx), 1e-12)


def test_off_classes_follow_quantus_draws_per_chunk():
    y = np.arange(300) % 10
    got = fast.off_classes(y, 10, seed=3)
    for lo in (0, 128, 256):
        np.random.seed(3)
        idx = np.random.randint(0, 9, len(y[lo:lo + 128]))
        others = np.array([[c for c in range(10) if c != yy] for yy in y[lo:lo + 128]])
        np.testing.assert_array_equal(got[lo:lo + 128], others[np.arange(len(idx)), idx])
    assert (got != y).all()


def test_spearman_rows_equal_scipy_with_ties_and_masks():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, (40, 60)).astype(np.float32)  # many ties
    b = rng.normal(size=(40, 60)).astype(np.float32)
    b[:, ::3] = 0.0
    mask = rng.random((40, 60)) < 0.5
    mask[0, :] = False
    mask[1, :2] = True
    mask[1, 2:] = False  # < 3 foreground pixels: NaN
    a[2] = 1.0  # constant map
    b[3] = np.nan
    want = foreground_spearman(mask)(a, b)
    assert np.isnan(want[[0, 1, 2, 3]]).all()
    assert_same(similarity.spearman_rows(a, b, mask), want, 1e-12)
    zero = similarity.spearman_rows(a, b, mask, constant="zero")
    assert zero[2] == 0.0 and np.isnan(zero[[0, 1, 3]]).all()
    assert_same(np.delete(zero, 2), np.delete(want, 2), 0)


# -- known answers, the constant rule ------------------------------------------------------------

def test_a_map_that_ignores_the_weights_scores_one_and_a_lost_map_zero(oracle, errors, ctx):
    ramp = torch.linspace(0.0, 0.01, 784).view(1, 1, 28, 28)

    def fixed(x, t):  # a function of x alone: every randomised model gives the same map
        return x + ramp

    b = make_batch(errors, 10, fixed)
    for constant in ("zero", "nan"):
        layers = fast.mprt_layers(b, ctx, constant=constant)
        assert list(layers) == LAYERS
        for v in layers.values():
            np.testing.assert_allclose(v.numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(fast.random_logit(b, ctx).numpy(), 1.0, atol=1e-6)  # same map for any class

    trained = state(oracle.unwrap())

    def lost(x, t):  # the map on the trained model, all zeros once any layer is randomised
        same = all(torch.equal(trained[k], v) for k, v in oracle.unwrap().state_dict().items())
        return fixed(x, t) if same else torch.zeros_like(x)

    b = make_batch(errors, 10, lost)
    zero = fast.mprt_layers(b, ctx)  # constant="zero" is the default
    np.testing.assert_allclose(zero["original"].numpy(), 1.0, atol=1e-12)
    assert all((zero[k] == 0.0).all() for k in LAYERS[1:])
    assert (fast.mprt(b, ctx) == 0.0).all()
    nan = fast.mprt_layers(b, ctx, constant="nan")
    assert all(nan[k].isnan().all() for k in LAYERS[1:])
    assert fast.mprt(b, ctx, constant="nan").isnan().all()

    zeros = make_batch(errors, 4, lambda x, t: torch.zeros_like(x))  # both maps constant: undefined
    assert fast.mprt(zeros, ctx).isnan().all() and fast.random_logit(zeros, ctx).isnan().all()


# -- side effects, call counts -------------------------------------------------------------------

def test_weights_and_global_rngs_are_restored_and_one_call_per_layer(oracle, errors, ctx):
    explain = counted(method_fn(oracle, "saliency"))
    b = make_batch(errors, 150, explain)  # > 128 rows: the reference would call twice per layer
    before = state(oracle.unwrap())
    np.random.seed(123)
    torch.manual_seed(456)
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    explain.calls = 0
    s = fast.mprt(b, ctx)
    assert explain.calls == len(LAYERS) - 1  # one per randomised layer, all 150 rows each ("original" unscored)
    explain.calls = 0
    fast.mprt_layers(b, ctx)
    assert explain.calls == len(LAYERS)
    assert s.shape == (150,) and s.dtype == torch.float64 and np.nanmean(s.numpy()) < 0.7
    fast.random_logit(b, ctx)
    after = oracle.unwrap().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    got_np = np.random.get_state()
    assert got_np[0] == np_state[0] and np.array_equal(got_np[1], np_state[1]) and got_np[2:] == np_state[2:]
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert torch.allclose(oracle.logits(errors.x[:8]), oracle.unwrap()(errors.x[:8]), atol=1e-4)  # fresh fast copy

    def broken(x, t):
        if not all(torch.equal(before[k], v) for k, v in oracle.unwrap().state_dict().items()):
            raise RuntimeError("boom")
        return explain(x, t)

    with pytest.raises(RuntimeError, match="boom"):
        fast.mprt(make_batch(errors, 4, broken), ctx)
    assert all(torch.equal(before[k], v) for k, v in oracle.unwrap().state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_bad_arguments_are_refused(oracle, errors, ctx):
    b = make_batch(errors, 3, method_fn(oracle, "saliency"))
    with pytest.raises(ValueError, match="layer_order"):
        fast.mprt(b, ctx, layer_order="sideways")
    with pytest.raises(ValueError, match="constant"):
        fast.mprt(b, ctx, constant="one")
    with pytest.raises(ValueError, match="reduce"):
        fast.mprt(b, ctx, reduce="max")
    no_fn = AttrBatch(b.x, b.attr, b.explained, b.seconds)
    with pytest.raises(ValueError, match="explain_fn"):
        fast.random_logit(no_fn, ctx)
    with pytest.raises(ValueError, match="explain_fn"):
        fast.mprt_layers(no_fn, ctx)
