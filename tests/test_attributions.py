"""Attribution methods: a contract test over every registered entry, plus known-answer checks.

All on the real default CNN and 8 of its real errors (fixtures in conftest.py). Known answers:
IG completeness, Saliency = |autograd gradient|, Grad-CAM = captum LayerGradCam + upsample,
contrast / counterfactual CAM = a hand-written Grad-CAM of their scores, Score-CAM = a
per-channel loop, DeepLift summation-to-delta, whole-image occlusion, the IG baselines.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bench.contract.results import AttrResult
from solvers import ATTRIBUTIONS

N = 8
# The contract does not depend on sample counts: expensive defaults are cut here so the whole
# file stays near a minute on 2 CPU cores (the defaults are timed by the timing script).
CHEAP = {
    "smoothgrad": dict(n_samples=8), "gradient_shap": dict(n_samples=8),
    "deepshap": dict(n_baselines=4), "occlusion": dict(stride=4),
    "lime": dict(n_samples=32), "kernel_shap": dict(n_samples=32),
    "ig_multi_mean": dict(n_baselines=2, n_steps=8), "ig_multi_median": dict(n_baselines=3, n_steps=8),
    **{name: dict(n_steps=8) for name in ("ig", "ig_blur", "ig_uniform", "ig_gaussian", "ig_maxdist")},
}


@pytest.fixture(scope="module")
def batch(errors):
    """(x, target = predicted class, contrast = true class) of the first N real errors."""
    return errors.x[:N].clone(), errors.pred[:N].clone(), errors.true[:N].clone()


def bind(name, oracle, mnist, **params):
    cls = ATTRIBUTIONS.get(name)
    view = oracle if cls.white_box else oracle.black_box()
    return cls(view, **params).fit(mnist.train.x, mnist.train.y)


def target_logit(model, x, target):
    return model(x).gather(1, target.view(-1, 1)).squeeze(1)


@pytest.mark.parametrize("name", ATTRIBUTIONS.names())
def test_contract(name, oracle, mnist, batch):
    x, target, contrast = batch
    method = bind(name, oracle, mnist, **CHEAP.get(name, {}))
    cls = type(method)
    for q in (None, contrast):
        oracle.start(N)
        res = method(x, target, q)
        assert isinstance(res, AttrResult)
        attr = res.attr
        assert attr.shape == x.shape and attr.dtype == torch.float32 and attr.device == x.device
        assert torch.isfinite(attr).all()
        assert torch.equal(res.explained, target)
        assert not attr.requires_grad
        if getattr(cls, "uses_gradients", True):
            assert oracle.grad_queries.min() > 0
        elif getattr(cls, "uses_model", True):
            assert oracle.queries.min() > 0 and oracle.grad_queries.sum() == 0
        else:
            assert oracle.queries.sum() == 0
        if q is not None:
            assert res.info["contrast"] in ("margin", "native", "ignored")
    if "seed" in {f.name for f in dataclasses.fields(cls.Params)}:  # seeded: deterministic
        assert torch.equal(method(x, target, contrast).attr, res.attr)
    if name in ("contrast_cam", "counterfactual_cam"):
        assert cls.contrastive


@pytest.mark.parametrize("name", ["random", "ig_uniform", "ig_multi_median"])
def test_row_seeded_methods_ignore_batch_composition(name, oracle, mnist, batch):
    x, target, _ = batch
    method = bind(name, oracle, mnist, **CHEAP.get(name, {}))
    full = method(x, target).attr
    assert torch.allclose(method(x[3:5], target[3:5]).attr, full[3:5], atol=1e-5)


def test_seed_changes_random_maps(oracle, mnist, batch):
    x, target, _ = batch
    a = bind("random", oracle, mnist, seed=0)(x, target).attr
    assert not torch.equal(a, bind("random", oracle, mnist, seed=1)(x, target).attr)
    assert a.min() >= 0 and a.max() < 1


def test_ig_completeness(oracle, cnn, batch):
    x, target, _ = batch
    attr = ATTRIBUTIONS.get("ig")(oracle, n_steps=64)(x, target).attr
    with torch.no_grad():
        gap = target_logit(cnn[0], x, target) - target_logit(cnn[0], torch.zeros_like(x), target)
    assert torch.allclose(attr.flatten(1).sum(1), gap, rtol=0.02, atol=1e-3)


def test_ig_query_counts(oracle, batch):
    x, target, _ = batch
    oracle.start(N)
    ATTRIBUTIONS.get("ig")(oracle, n_steps=32)(x, target)
    assert torch.allclose(oracle.grad_queries, torch.full((N,), 32.0, dtype=torch.float64))


def test_saliency_is_abs_input_gradient(oracle, cnn, batch):
    x, target, contrast = batch
    model = cnn[0]
    xg = x.clone().requires_grad_(True)
    z = model(xg)
    (grad,) = torch.autograd.grad(z.gather(1, target.view(-1, 1)).sum(), xg, retain_graph=True)
    method = ATTRIBUTIONS.get("saliency")(oracle)
    assert torch.allclose(method(x, target).attr, grad.abs(), atol=1e-6)
    margin = (z.gather(1, target.view(-1, 1)) - z.gather(1, contrast.view(-1, 1))).sum()
    (grad_m,) = torch.autograd.grad(margin, xg)
    assert torch.allclose(method(x, target, contrast).attr, grad_m.abs(), atol=1e-6)


def test_gradcam_equals_captum_layer_gradcam(oracle, cnn, batch):
    from captum.attr import LayerAttribution, LayerGradCam

    x, target, _ = batch
    layer = oracle.layer(oracle.named_layer_for_cam())
    ref = LayerGradCam(cnn[0], layer).attribute(x, target=target, relu_attributions=True)
    ref = LayerAttribution.interpolate(ref, (28, 28), "bilinear")
    assert torch.allclose(ATTRIBUTIONS.get("gradcam")(oracle)(x, target).attr, ref, atol=1e-6)


def manual_cam(model, layer, x, score_fn):
    """Grad-CAM by hand: ReLU(sum_k mean(d score / d A^k) A^k), bilinear to 28x28."""
    acts = {}
    handle = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
    z = model(x.clone().requires_grad_(True))
    handle.remove()
    (g,) = torch.autograd.grad(score_fn(z).sum(), acts["a"])
    cam = (g.mean((2, 3), keepdim=True) * acts["a"]).sum(1, keepdim=True).relu()
    return F.interpolate(cam, size=(28, 28), mode="bilinear").detach()


def test_contrast_and_counterfactual_cam_known_answers(oracle, cnn, batch):
    x, target, contrast = batch
    model, layer = cnn[0], oracle.layer(oracle.named_layer_for_cam())

    def pick(z, c):
        return z.gather(1, c.view(-1, 1)).squeeze(1)

    ce = manual_cam(model, layer, x, lambda z: F.cross_entropy(z, contrast, reduction="none"))
    assert torch.allclose(ATTRIBUTIONS.get("contrast_cam")(oracle)(x, target, contrast).attr, ce, atol=1e-6)
    mg = manual_cam(model, layer, x, lambda z: pick(z, target) - pick(z, contrast))
    got = ATTRIBUTIONS.get("contrast_cam")(oracle, loss="margin")(x, target, contrast).attr
    assert torch.allclose(got, mg, atol=1e-6)
    cf = manual_cam(model, layer, x, lambda z: -pick(z, target))
    assert torch.allclose(ATTRIBUTIONS.get("counterfactual_cam")(oracle)(x, target).attr, cf, atol=1e-6)


def test_scorecam_matches_per_channel_loop(oracle, cnn, batch):
    x, target, _ = batch
    x, target = x[:2], target[:2]
    model, layer = cnn[0], oracle.layer(oracle.named_layer_for_cam())
    acts = {}
    handle = layer.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.relu()))
    with torch.no_grad():
        model(x)
        handle.remove()
        up = F.interpolate(acts["a"], size=(28, 28), mode="bilinear")
        ref = torch.zeros(2, 1, 28, 28)
        for i in range(2):
            for k in range(up.shape[1]):
                m = up[i:i + 1, k:k + 1]
                if m.max() == m.min():
                    continue
                w = model(x[i:i + 1] * (m - m.min()) / (m.max() - m.min())).softmax(1)[0, target[i]]
                ref[i] += w * m[0]
    oracle.start(2)
    got = ATTRIBUTIONS.get("scorecam")(oracle)(x, target).attr
    assert torch.allclose(got, ref.relu(), rtol=1e-4, atol=1e-5)
    assert torch.equal(oracle.queries, torch.full((2,), 1.0 + up.shape[1], dtype=torch.float64))


def test_deeplift_summation_to_delta(oracle, cnn, batch):
    x, target, _ = batch
    attr = ATTRIBUTIONS.get("deeplift")(oracle)(x, target).attr
    with torch.no_grad():
        gap = target_logit(cnn[0], x, target) - target_logit(cnn[0], torch.zeros_like(x), target)
    assert torch.allclose(attr.flatten(1).sum(1), gap, atol=1e-4)


def test_whole_image_occlusion_is_the_logit_drop(oracle, cnn, batch):
    x, target, _ = batch
    attr = ATTRIBUTIONS.get("occlusion")(oracle.black_box(), window=28, stride=28)(x, target).attr
    with torch.no_grad():
        gap = target_logit(cnn[0], x, target) - target_logit(cnn[0], torch.zeros_like(x), target)
    assert torch.allclose(attr, gap.view(-1, 1, 1, 1).expand_as(attr), atol=1e-5)


def test_patch_mask_and_patchwise_constant_lime(oracle, mnist, batch):
    from solvers.attr_perturbation import patch_mask

    mask = patch_mask(torch.Size([1, 1, 28, 28]), 4, torch.device("cpu"))
    assert mask.unique().tolist() == list(range(49))
    assert torch.equal(mask.flatten().bincount(), torch.full((49,), 16))
    x, target, _ = batch
    attr = bind("kernel_shap", oracle, mnist, n_samples=64)(x[:2], target[:2]).attr
    blocks = attr.view(2, 7, 4, 7, 4)
    assert torch.allclose(blocks, blocks[:, :, :1, :, :1].expand_as(blocks))


def test_ig_baselines(oracle, mnist, batch):
    from solvers.attr_ig import gaussian_blur

    x, _, _ = batch
    assert torch.equal(ATTRIBUTIONS.get("ig_maxdist")(oracle).baselines(x)[0], 1 - torch.round(x))
    assert torch.equal(ATTRIBUTIONS.get("ig")(oracle).baselines(x)[0], torch.zeros_like(x))
    const = torch.full((1, 1, 28, 28), 0.3)
    assert torch.allclose(gaussian_blur(const, 4.0), const, atol=1e-6)
    blur = ATTRIBUTIONS.get("ig_blur")(oracle).baselines(x)[0]
    assert torch.allclose(blur.flatten(1).mean(1), x.flatten(1).mean(1), atol=0.02)
    g = ATTRIBUTIONS.get("ig_gaussian")(oracle).baselines(x)[0]
    assert g.min() >= 0 and g.max() <= 1 and not torch.equal(g, x)
    multi = ATTRIBUTIONS.get("ig_multi_mean")(oracle, n_baselines=3).baselines(x)
    assert multi.shape == (3, *x.shape) and not torch.equal(multi[0], multi[1])


def test_fit_is_required_for_training_baselines(oracle, batch):
    x, target, _ = batch
    with pytest.raises(RuntimeError, match="fit"):
        ATTRIBUTIONS.get("deepshap")(oracle)(x, target)


def test_unknown_param_and_bad_contrast_loss_are_config_errors(oracle):
    from bench.contract.params import ConfigError

    with pytest.raises(ConfigError):
        ATTRIBUTIONS.get("ig")(oracle, steps=10)
    with pytest.raises(ConfigError):
        ATTRIBUTIONS.get("contrast_cam")(oracle, loss="kl")
