"""Plausibility metrics on the real MNIST, the real CNN and real trained resources (cached).

First run on a machine trains 11 autoencoders (~70 CPU-seconds) and the second classifier
(~7 CPU-seconds) into the bench cache; later runs load them.
"""

from __future__ import annotations

import pytest
import torch

from bench.contract.metrics import CFBatch, MetricContext
from metrics import CF_METRICS
from metrics import plausibility as P
from metrics._plausibility_models import SECOND_SEED_OFFSET, load_or_train_autoencoders

NAMES = ["knn_ratio", "im1", "im2", "oracle_agreement"]


@pytest.fixture(scope="module")
def ctx(mnist, cnn, cache_dir) -> MetricContext:
    from bench.context import metric_context
    from bench.contract.oracle import Oracle

    return metric_context(mnist, Oracle(cnn[0], "cpu"), "cpu", cache_dir=cache_dir, seed=0, dataset="mnist")


def _batch(x: torch.Tensor, x_cf: torch.Tensor, target: torch.Tensor, ctx: MetricContext) -> CFBatch:
    z = torch.zeros(len(x), dtype=torch.float64)
    return CFBatch(x=x, x_cf=x_cf, target=target, probs_cf=ctx.oracle.probs(x_cf),
                   queries=z, grad_queries=z.clone(), seconds=z.clone())


def _real_cf(errors, mnist, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, target, x_cf): n errors (cycled), each paired with a real test digit of its true class."""
    idx = torch.arange(n) % len(errors)
    x, target = errors.x[idx], errors.true[idx]
    first = {c: int((mnist.test.y == c).nonzero()[0]) for c in range(10)}
    x_cf = mnist.test.x[torch.tensor([first[int(t)] for t in target], dtype=torch.long)]
    return x, target, x_cf


# -- knn_ratio: exact cases ---------------------------------------------------------------
def test_knn_distance_to_own_training_image_is_zero_for_k1(ctx, mnist):
    ref = P.train_by_class(ctx)
    x_cf = mnist.train.x[:50]
    d = P.knn_mean_distance(x_cf, mnist.train.y[:50], ref, k=1)
    assert torch.equal(d, torch.zeros(50, dtype=torch.float64))
    x = mnist.test.x[:50]
    assert torch.equal(P.knn_ratio_score(x, x_cf, mnist.train.y[:50], ref, k=1), torch.zeros(50, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 3, P.KNN_K])
def test_knn_distance_matches_brute_force(ctx, mnist, k):
    ref = P.train_by_class(ctx)
    x, target = mnist.test.x[:20], (mnist.test.y[:20] + 3) % 10
    got = P.knn_mean_distance(x, target, ref, k=k, chunk=7)
    for i in range(20):
        all_d = (ref[int(target[i])].double() - x[i].flatten().double()).norm(dim=1)
        assert got[i].item() == pytest.approx(all_d.sort().values[:k].mean().item(), rel=1e-12)


def test_knn_ratio_of_unchanged_x_is_one(ctx, errors):
    x, target = errors.x[:40], errors.true[:40]
    r = CF_METRICS.get("knn_ratio")(_batch(x, x.clone(), target, ctx), ctx)
    assert torch.equal(r, torch.ones(len(x), dtype=torch.float64))


def test_knn_ratio_below_one_for_real_target_digits(ctx, errors, mnist):
    x, target, x_cf = _real_cf(errors, mnist, 40)
    assert CF_METRICS.get("knn_ratio")(_batch(x, x_cf, target, ctx), ctx).mean() < 1.0


# -- IM1 / IM2 ------------------------------------------------------------------------------
def test_im1_below_one_for_real_digits_above_one_when_swapped(ctx, mnist):
    aes = P.autoencoders(ctx)[0]
    x, y = mnist.test.x[:500], mnist.test.y[:500]
    other = (y + 1) % 10
    assert P.im1_score(x, y, other, aes).mean() < 0.6
    assert P.im1_score(x, other, y, aes).mean() > 2.0
    assert torch.allclose(P.im1_score(x, y, y, aes), torch.ones(500, dtype=torch.float64))


def test_im1_metric_uses_model_prediction_as_original(ctx, errors, mnist):
    x, target, x_cf = _real_cf(errors, mnist, 30)
    got = CF_METRICS.get("im1")(_batch(x, x_cf, target, ctx), ctx)
    want = P.im1_score(x_cf, target, errors.pred[torch.arange(30) % len(errors)], P.autoencoders(ctx)[0])
    assert torch.equal(got, want)


def test_im2_small_for_real_digits(ctx, mnist):
    aes = P.autoencoders(ctx)[0]
    x, y = mnist.test.x[:500], mnist.test.y[:500]
    true_t = P.im2_score(x, y, aes).mean()
    assert true_t < 0.1
    assert true_t < P.im2_score(x, (y + 1) % 10, aes).mean() / 3
    assert true_t < P.im2_score(torch.rand(100, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
                                y[:100], aes).mean() / 2


def test_autoencoders_reload_from_cache(ctx, mnist, cache_dir):
    aes, meta = P.autoencoders(ctx)
    again, meta2 = load_or_train_autoencoders(ctx)
    assert meta2["cached"] and meta2["weights_sha256"] == meta["weights_sha256"]
    assert set(again.keys()) == {str(c) for c in range(10)} | {"all"}


# -- oracle agreement ----------------------------------------------------------------------
def test_second_classifier_is_independent_and_accurate(ctx):
    clf, meta = P.second_classifier(ctx)
    assert meta["test_accuracy"] > 0.97
    assert meta["seed"] == ctx.seed + SECOND_SEED_OFFSET
    assert not any(isinstance(m, torch.nn.Conv2d) for m in clf.modules())


def test_oracle_agreement_high_on_real_digits(ctx, mnist):
    x, y = mnist.test.x[:500], mnist.test.y[:500]
    agree = CF_METRICS.get("oracle_agreement")(_batch(x, x, y, ctx), ctx)
    assert agree.mean() > 0.97
    assert set(agree.unique().tolist()) <= {0.0, 1.0}


# -- contract and provenance ---------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, 17])
def test_outputs_float64_n_cpu(ctx, errors, mnist, name, n):
    fn = CF_METRICS.get(name)
    x, target, x_cf = _real_cf(errors, mnist, n)
    out = fn(_batch(x, x_cf, target, ctx), ctx)
    assert out.dtype == torch.float64 and out.shape == (n,) and out.device.type == "cpu"
    assert torch.isfinite(out).all()
    assert fn.valid_only and fn.version == "1" and fn.definition
    assert fn.higher_is_better == (name == "oracle_agreement")


def test_provenance_reports_built_resources(ctx):
    from pathlib import Path

    prov = P.plausibility_provenance(ctx, build=True)
    assert prov["knn"]["k"] == P.KNN_K
    assert set(prov["autoencoders"]["test_recon_sq_l2"]) == {str(c) for c in range(10)} | {"all"}
    assert prov["second_classifier"]["test_accuracy"] > 0.97
    for part in ("autoencoders", "second_classifier"):
        assert Path(prov[part]["checkpoint"]).exists() and prov[part]["train_seconds"] > 0
    assert P.plausibility_provenance(MetricContext()) == {}
