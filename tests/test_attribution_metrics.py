"""Attribution metrics on the real model and real errors: exact cases, a reference, golden checks.

The per-image reference below follows eclique/RISE `evaluation.py` (CausalMetric.single_run)
line by line, with a stable descending order (our pinned tie rule) instead of RISE's
flipped ascending argsort.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import ATTR_METRICS
from metrics.contour_patch import contour_masks, contour_patch
from metrics.deletion_insertion import (
    auc,
    deletion_auc,
    deletion_curves,
    insertion_auc,
    insertion_curves,
    make_substrate,
)
from metrics.quantus_metrics import q_complexity, q_pixel_flipping
from metrics.quantus_reference import mprt_layers, pixel_flipping_curves
from solvers import ATTRIBUTIONS


def saliency_fn(oracle):
    """|d logit_target / dx| through the oracle (counted), as an explain_fn."""
    def explain(x, target):
        x = x.detach().clone().requires_grad_(True)
        out = oracle.logits_grad(x)
        (g,) = torch.autograd.grad(out.gather(1, target.view(-1, 1)).sum(), x)
        return g.abs()

    return explain


def batch(oracle, errors, n, explain=None, rows=None):
    explain = explain or saliency_fn(oracle)
    rows = torch.arange(n) if rows is None else rows
    x, t = errors.x[rows], errors.pred[rows]
    return AttrBatch(x=x, attr=explain(x, t), explained=t, seconds=torch.zeros(len(x)),
                     method="saliency", explain_fn=explain)


def rise_reference(model, img, explanation, c, step, substrate_fn, mode):
    """One image, one step at a time (eclique/RISE CausalMetric.single_run, softmax model)."""
    _, ch, h, w = img.shape
    hw = h * w
    n_steps = (hw + step - 1) // step
    if mode == "del":
        start, finish = img.clone(), substrate_fn(img)
    else:
        start, finish = substrate_fn(img), img.clone()
    scores = np.empty(n_steps + 1)
    salient_order = np.argsort(-explanation.reshape(-1, hw), axis=1, kind="stable")
    for i in range(n_steps + 1):
        with torch.no_grad():
            pred = model(start).softmax(1)
        scores[i] = pred[0, c]
        if i < n_steps:
            coords = salient_order[:, step * i:step * (i + 1)]
            start.numpy().reshape(1, ch, hw)[0, :, coords] = finish.numpy().reshape(1, ch, hw)[0, :, coords]
    return scores


# -- AUC and substrates: exact small cases ---------------------------------------------------

def test_auc_of_known_curves():
    curves = torch.tensor([[1.0] * 29, list(np.linspace(1, 0, 29)), [0.0] * 29])
    assert auc(curves).tolist() == pytest.approx([1.0, 0.5, 0.0], abs=1e-12)
    assert auc(torch.tensor([[0.0, 1.0, 0.0]])).item() == pytest.approx(0.5)
    assert auc(torch.tensor([[1.0, 0.0]])).item() == pytest.approx(0.5)
    assert auc(curves).dtype == torch.float64


def test_blur_canvas_keeps_a_constant_interior_and_named_substrates():
    x = torch.full((1, 1, 28, 28), 0.5)
    blurred = make_substrate(x, "blur")
    assert torch.allclose(blurred[0, 0, 5:-5, 5:-5], x[0, 0, 5:-5, 5:-5], atol=1e-6)  # kernel sums to 1
    assert make_substrate(x, "zeros").abs().sum() == 0
    assert torch.equal(make_substrate(x, 0.25), torch.full_like(x, 0.25))
    with pytest.raises(ValueError):
        make_substrate(x, "grey")


# -- deletion / insertion on the real model ---------------------------------------------------

def test_deletion_prefers_the_bright_pixels_of_a_confident_error(oracle, errors):
    p = oracle.probs(errors.x).gather(1, errors.pred.view(-1, 1)).squeeze(1)
    i = int(p.argmax())  # the error the model is surest of
    x, t = errors.x[i:i + 1], errors.pred[i:i + 1]
    ctx = MetricContext(oracle=oracle)
    good = AttrBatch(x=x, attr=x, explained=t, seconds=torch.zeros(1))
    reverse = AttrBatch(x=x, attr=-x, explained=t, seconds=torch.zeros(1))
    assert deletion_auc(good, ctx).item() < deletion_auc(reverse, ctx).item() - 0.1
    assert insertion_auc(good, ctx).item() > insertion_auc(reverse, ctx).item()
    curve = deletion_curves(oracle, x, x, t)
    assert curve.shape == (1, 29) and curve[0, 0].item() == pytest.approx(p[i].item(), abs=1e-6)


@pytest.mark.parametrize("attr_kind,step", [("saliency", 28), ("x", 28), ("saliency", 100)])
def test_batched_curves_match_the_per_image_reference(oracle, errors, attr_kind, step):
    b = batch(oracle, errors, 4)
    attr = b.attr if attr_kind == "saliency" else b.x  # "x" has many exact ties (0 and 1)
    dels = deletion_curves(oracle, b.x, attr, b.explained, step=step, max_rows=50)
    ins = insertion_curves(oracle, b.x, attr, b.explained, step=step)
    model = oracle.unwrap()
    for j in range(len(b.x)):
        args = (model, b.x[j:j + 1].clone(), attr[j].sum(0).numpy(), int(b.explained[j]), step)
        ref_del = rise_reference(*args, lambda z: make_substrate(z, "zeros"), "del")
        ref_ins = rise_reference(*args, lambda z: make_substrate(z, "blur"), "ins")
        np.testing.assert_allclose(dels[j].numpy(), ref_del, atol=1e-6)
        np.testing.assert_allclose(ins[j].numpy(), ref_ins, atol=1e-6)
    assert dels.shape == (4, (784 + step - 1) // step + 1)


# -- contour patch ---------------------------------------------------------------------------

def test_contour_patch_of_a_square_keeps_exactly_its_hull(oracle, errors):
    attr = torch.zeros(2, 1, 28, 28)
    attr[0, 0, 8:16, 10:18] = 1.0  # 64 px < 10% of 784: the mask is the square
    expected = torch.zeros(28, 28, dtype=torch.bool)
    expected[7:17, 9:19] = True  # opening by a cross drops the 4 corners, dilation grows by 1 (L1)
    for r, c in [(7, 9), (7, 10), (8, 9), (7, 18), (7, 17), (8, 18),
                 (16, 9), (16, 10), (15, 9), (16, 18), (16, 17), (15, 18)]:
        expected[r, c] = False
    masks = contour_masks(attr)
    assert torch.equal(masks[0], expected) and int(masks[0].sum()) == 88
    assert not masks[1].any()  # an all-zero map has no positive evidence: empty patch

    x, t = errors.x[:2], errors.pred[:2]
    score = contour_patch(AttrBatch(x=x, attr=attr, explained=t, seconds=torch.zeros(2)), MetricContext(oracle=oracle))
    direct = (oracle.predict(x[:1] * expected) == t[:1]).double()
    assert score.dtype == torch.float64 and score[0] == direct[0] and score[1] == 0.0


# -- Quantus adapters --------------------------------------------------------------------------

QUANTUS = [n for n in ATTR_METRICS.names() if n.startswith("q_")]


@pytest.mark.parametrize("name", QUANTUS)
def test_quantus_adapter_runs_on_real_errors(oracle, errors, name):
    b = batch(oracle, errors, 4)
    fn = ATTR_METRICS.get(name)
    s = fn(b, MetricContext(oracle=oracle, seed=0))
    assert isinstance(s, torch.Tensor) and s.dtype == torch.float64 and s.shape == (4,)
    assert not torch.isinf(s).any()  # inf comes back as NaN
    assert int(torch.isnan(s).sum()) <= 4  # NaN rows are kept and counted, never dropped
    assert isinstance(fn.higher_is_better, bool) and fn.version and fn.definition


def test_quantus_nan_is_passed_through_per_row(oracle, errors):
    b = batch(oracle, errors, 3)
    b.attr[1] = 0.0  # entropy of an all-zero map is 0/0
    s = q_complexity(b, MetricContext(oracle=oracle))
    assert s.shape == (3,) and torch.isnan(s[1]) and not torch.isnan(s[[0, 2]]).any()


def test_quantus_metrics_are_seeded_and_batch_independent(oracle, errors):
    b = batch(oracle, errors, 4)
    ctx = MetricContext(oracle=oracle, seed=3)
    f = ATTR_METRICS.get("q_faithfulness_estimate")  # deterministic: per-sample normalisation
    alone = f(batch(oracle, errors, 1), ctx)
    assert f(b, ctx)[0].item() == pytest.approx(alone[0].item(), abs=1e-5)  # float32 forwards
    g = ATTR_METRICS.get("q_max_sensitivity")
    assert torch.equal(g(b, ctx), g(b, ctx))


def test_golden_deletion_equals_quantus_pixel_flipping(oracle, errors):
    """Same order, 28 px/step, substrate 0 (Quantus "black" = per-sample min = 0 on MNIST):
    Quantus' curve is ours without the unperturbed first point, so the AUCs are tied exactly:
    deletion * 28 = (p0 + p1)/2 + pixel_flipping * 27."""
    b = batch(oracle, errors, 6)
    ctx = MetricContext(oracle=oracle)
    ours = deletion_curves(oracle, b.x, b.attr, b.explained)
    theirs = pixel_flipping_curves(b, ctx)
    assert float(b.x.flatten(1).min(1).values.max()) == 0.0
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs.numpy(), atol=1e-6)
    np.testing.assert_allclose(pixel_flipping_curves(b, ctx, baseline="black").numpy(), theirs.numpy(), atol=1e-7)
    d, q = deletion_auc(b, ctx), q_pixel_flipping(b, ctx)
    np.testing.assert_allclose((d * 28).numpy(), ((ours[:, 0] + ours[:, 1]) / 2 + q * 27).numpy(), atol=1e-9)
    assert ((q >= 0) & (q <= 1)).all()


def test_quantus_orders_tied_pixels_like_our_stable_sort(oracle, errors):
    """Saliency cut to 4 levels: most pixels tie. Quantus' np.argsort is made stable while it
    runs (metrics/_quantus_impl.py), so its pixel-flipping curve is our deletion curve exactly,
    on every CPU. Without that, numpy's AVX-512 sort (where the CPU has it) orders ties its own
    way and the curves differ; this test failed so on an AVX-512 machine."""
    from metrics import _quantus_impl

    b = batch(oracle, errors, 6)
    a = b.attr.abs().flatten(1)
    b.attr = torch.round(4 * a / a.max(1, keepdim=True).values).view_as(b.attr)
    levels = b.attr.flatten(1)
    assert min(784 - len(torch.unique(r)) for r in levels) > 700
    ours = deletion_curves(oracle, b.x, b.attr, b.explained)
    theirs = pixel_flipping_curves(b, MetricContext(oracle=oracle))
    np.testing.assert_allclose(ours[:, 1:].numpy(), theirs.numpy(), atol=1e-6)
    ties = np.zeros(1000)
    with _quantus_impl.stable_argsort():
        assert np.array_equal(np.argsort(ties), np.arange(1000))
    assert np.argsort is _quantus_impl._numpy_argsort  # numpy's own again after the block


def test_mprt_reaches_black_box_methods(oracle, errors):
    """Occlusion queries the oracle's gradient-free path, a frozen inference-optimised copy on
    CPU. MPRT loads randomised weights into the model in place; the copy must follow them, or
    occlusion's maps never change and it scores ~1.0 (it did: 0.9996 on the published boards)."""
    from bench.contract.oracle import Oracle

    x = errors.x[:2]
    before = oracle.logits(x)  # builds the frozen copy
    model = oracle.unwrap()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(0)
    model.load_state_dict({k: torch.randn_like(v) if v.is_floating_point() else v for k, v in saved.items()})
    with torch.no_grad():
        eager = model(x)
    np.testing.assert_allclose(oracle.logits(x).numpy(), eager.numpy(), rtol=1e-4, atol=1e-4)
    model.load_state_dict(saved)
    assert torch.allclose(oracle.logits(x), before, atol=1e-5)

    def mprt(o):
        occ = ATTRIBUTIONS.get("occlusion")(o.black_box(), window=4, stride=4)
        return ATTR_METRICS.get("q_mprt")(batch(o, errors, 3, explain=lambda x, t: occ(x, t).attr),
                                          MetricContext(oracle=o, seed=0))

    s = mprt(oracle)
    assert s.shape == (3,) and s.mean() < 0.9
    eager = Oracle(model, "cpu", fast=False)  # no frozen copy at all: the reference
    np.testing.assert_allclose(s.numpy(), mprt(eager).numpy(), atol=1e-6)


def test_mprt_shows_attributions_change_when_weights_are_randomised(oracle, errors):
    x_grad = saliency_fn(oracle)

    def input_x_gradient(x, target):  # zero-baseline method: exact zeros on the background
        return x * x_grad(x, target)

    ctx = MetricContext(oracle=oracle, seed=0)
    before = {k: v.clone() for k, v in oracle.unwrap().state_dict().items()}
    b = batch(oracle, errors, 6, explain=input_x_gradient)
    fg = mprt_layers(b, ctx, foreground=True)
    whole = mprt_layers(b, ctx, foreground=False)
    assert list(fg)[0] == "original" and len(fg) == 5  # trained + 4 cascading randomisations
    assert (fg["original"] > 0.999).all()  # the explain_fn reproduces attr on the trained model
    last = list(fg)[-1]
    assert whole[last].mean() > 0.95  # background ties: whole-image ranks barely move
    assert fg[last].mean() < 0.7  # on the digit they do
    sal = ATTR_METRICS.get("q_mprt")(batch(oracle, errors, 6), ctx)
    assert sal.shape == (6,) and sal.mean() < 0.5
    after = oracle.unwrap().state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights restored
