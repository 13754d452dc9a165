"""The robustness metrics' shared noisy re-explanations, held equal to Quantus 0.6 on real maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import quantus_robustness as rob
from metrics._quantus_impl import as_scores, run_quantus
from solvers import ATTRIBUTIONS

QUANTUS = {"MaxSensitivity": rob.max_sensitivity, "AvgSensitivity": rob.avg_sensitivity,
           "LocalLipschitzEstimate": rob.local_lipschitz}


def method_batch(oracle, errors, name: str, rows, **params) -> AttrBatch:
    method = ATTRIBUTIONS.get(name)(oracle, **params)

    def explain(x, t):
        return method(x, t).attr

    x, t = errors.x[rows], errors.pred[rows]
    return AttrBatch(x=x, attr=explain(x, t), explained=t, seconds=torch.zeros(len(x)), method=name,
                     explain_fn=explain)


def quantus(name: str, b: AttrBatch, ctx: MetricContext, nr_samples: int) -> np.ndarray:
    init = rob.quantus_init(name, nr_samples=nr_samples)
    return as_scores(run_quantus(name, b, ctx, init, softmax=False, explain=True)).numpy()


@pytest.mark.parametrize("name,rows,nr_samples", [("saliency", slice(0, 140), 4), ("input_x_gradient", slice(0, 20), 10),
                                                  ("gradcam", slice(20, 40), 10)])
def test_each_score_equals_quantus_on_real_maps(oracle, errors, name, rows, nr_samples):
    """140 rows cross Quantus' 128-row chunk (its noise is drawn per chunk); gradcam's maps are
    coarse and upsampled, input x gradient's are exact zeros on the background."""
    b = method_batch(oracle, errors, name, rows)
    ctx = MetricContext(oracle=oracle, seed=3)
    state = np.random.get_state()[1].copy()
    for qname, fast in QUANTUS.items():
        theirs = quantus(qname, b, ctx, nr_samples)
        ours = fast(b, ctx, nr_samples=nr_samples).numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        # Quantus computes in float32 (its maps and inputs), bench in float64: ~1e-7 relative
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-6, err_msg=qname)
    assert np.array_equal(np.random.get_state()[1], state)  # the global RNG is restored


def test_the_three_metrics_share_one_set_of_re_explanations(oracle, errors):
    calls = []
    b = method_batch(oracle, errors, "saliency", slice(0, 8))
    inner = b.explain_fn
    b.explain_fn = lambda x, t: calls.append(len(x)) or inner(x, t)
    ctx = MetricContext(oracle=oracle, seed=0)
    for fast in QUANTUS.values():
        fast(b, ctx, nr_samples=5)
    assert calls == [8] * 5  # one call per sample, all rows at once, for all three metrics


def test_noise_stays_on_the_digit_and_in_range(oracle, errors):
    b = method_batch(oracle, errors, "saliency", slice(0, 6))
    xs, _ = rob.noisy_explanations(b, MetricContext(oracle=oracle, seed=0), nr_samples=3)
    x = b.x.numpy().reshape(6, -1)
    assert np.array_equal(xs[:, x == 0], np.zeros_like(xs[:, x == 0]))  # background untouched
    assert xs.min() >= 0 and xs.max() <= 1
    moved = np.abs(xs - x[None])[:, x > 0]
    assert 0.05 < moved.mean() < 0.2 and moved.max() <= 0.2 + 1e-6


def test_known_answers(oracle, errors):
    """A method that ignores its input has sensitivity 0; one that returns 2x the stored map at
    every x' has sensitivity exactly 1 and Lipschitz 0 (normalised maps are equal)."""
    b = method_batch(oracle, errors, "saliency", slice(0, 5))
    ctx = MetricContext(oracle=oracle, seed=0)
    fixed = b.attr.clone()
    b.explain_fn = lambda x, t: fixed
    assert torch.equal(rob.max_sensitivity(b, ctx), torch.zeros(5, dtype=torch.float64))
    b.explain_fn = lambda x, t: 2 * fixed
    ctx.memo.clear()
    np.testing.assert_allclose(rob.avg_sensitivity(b, ctx).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rob.local_lipschitz(b, ctx).numpy(), 0.0, atol=1e-6)
    b.attr = torch.zeros_like(b.attr)  # ||a|| = 0: the ratio is undefined, NaN (never inf)
    ctx.memo.clear()
    assert torch.isnan(rob.max_sensitivity(b, ctx)).all()


def test_histogram_metrics_cannot_be_separated_by_a_matched_null(oracle, errors):
    """Why sparseness and complexity carry no control: the method's own values at random positions
    (the histogram-matched null) score exactly what the map scores."""
    from metrics import ATTR_METRICS

    b = method_batch(oracle, errors, "saliency", slice(0, 12))
    ctx = MetricContext(oracle=oracle, seed=0)
    perm = torch.randperm(784, generator=torch.Generator().manual_seed(0))
    null = AttrBatch(x=b.x, attr=b.attr.flatten(1)[:, perm].view_as(b.attr), explained=b.explained,
                     seconds=b.seconds, method="null")
    for name in ("q_sparseness", "q_complexity"):
        f = ATTR_METRICS.get(name)
        np.testing.assert_allclose(f(null, ctx).numpy(), f(b, ctx).numpy(), rtol=1e-6)
        assert f.control.startswith("a function of the map's value histogram")
    assert ATTR_METRICS.get("q_max_sensitivity").control and not ATTR_METRICS.get("del_morf_zeros").control


def test_metrics_off_the_boards_stay_available_by_name():
    """metric(board=False): left off a board that names no metrics, scored when a run names it."""
    from bench.tasks import metric_fns
    from metrics import ATTR_METRICS

    off = {"q_relative_output_stability", "q_pixel_flipping", "q_monotonicity_correlation", "road_morf", "road_lerf",
           "road_srg"}
    board = [f.metric_name for f in metric_fns(ATTR_METRICS, [])]
    assert off.isdisjoint(board) and board[:3] == ["del_morf_zeros", "del_lerf_zeros", "srg_zeros"]
    assert {f.metric_name for f in metric_fns(ATTR_METRICS, sorted(off))} == off
    assert all("Off the boards" in ATTR_METRICS.get(n).definition for n in off)  # each says why
