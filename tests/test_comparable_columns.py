"""Comparable counterfactual columns: class-normalised IM1, L2 to AE(x), cost in forward-pass equivalents,
and provenance hooks that record the plausibility models even when every score came from the store."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.contract.metrics import CFBatch, MetricContext
from metrics import CF_METRICS
from metrics import plausibility as P


class Scale(nn.Module):
    """A stand-in autoencoder: AE(x) = a * x, so ||x - AE(x)||^2 = (1 - a)^2 ||x||^2 exactly."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)), requires_grad=False)

    def forward(self, x):
        return self.a * x


def scale_aes() -> nn.ModuleDict:
    return nn.ModuleDict({"0": Scale(0.5), "1": Scale(0.9), "2": Scale(0.0), "all": Scale(0.8)})


def test_im1_class_on_a_hand_made_case():
    """x_cf = all-ones 2x2 image (||x||^2 = 4); target 1 (a = 0.9, error 0.04, test error 0.02),
    original 0 (a = 0.5, error 1.0, test error 4.0): raw IM1 = 0.04 / 1 = 0.04,
    class-normalised = (0.04 / 0.02) / (1.0 / 4.0) = 8 (a hard target-class AE no longer flatters)."""
    aes = scale_aes()
    x_cf = torch.ones(1, 1, 2, 2)
    target, original = torch.tensor([1]), torch.tensor([0])
    test_error = {"0": 4.0, "1": 0.02, "2": 1.0, "all": 1.0}
    raw = P.im1_score(x_cf, target, original, aes, eps=0.0)
    assert raw.item() == pytest.approx(0.04, rel=1e-5)
    got = P.im1_class_score(x_cf, target, original, aes, test_error, eps=0.0)
    assert got.dtype == torch.float64 and got.item() == pytest.approx(8.0, rel=1e-5)
    # two rows with different classes at once, and the same class on both sides gives raw IM1 = 1
    x2 = torch.cat([x_cf, 2 * x_cf])
    both = P.im1_class_score(x2, torch.tensor([1, 2]), torch.tensor([0, 2]), aes, test_error, eps=0.0)
    assert both.tolist() == pytest.approx([8.0, 1.0], rel=1e-5)


def test_l2_ae_on_a_hand_made_case():
    """AE_all(x) = 0.8 x; x = 0, x_cf = ones (4 pixels): ||x_cf - 0||_2 = 2; x = ones, x_cf = ones: 0.2 * 2."""
    aes = scale_aes()
    x = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    x_cf = torch.ones(2, 1, 2, 2)
    assert P.l2_ae_score(x, x_cf, aes).tolist() == pytest.approx([2.0, 0.4], rel=1e-6)


def _batch(q, g) -> CFBatch:
    n = len(q)
    return CFBatch(x=torch.zeros(n, 1, 28, 28), x_cf=torch.zeros(n, 1, 28, 28), target=torch.zeros(n, dtype=torch.long),
                   probs_cf=torch.ones(n, 10) / 10, queries=torch.tensor(q, dtype=torch.float64),
                   grad_queries=torch.tensor(g, dtype=torch.float64), seconds=torch.zeros(n, dtype=torch.float64))


def test_cost_prices_a_gradient_query_at_the_measured_ratio():
    from metrics import cost as C

    ctx = MetricContext(oracle=object())
    ctx.memo[C._KEY] = dict(ratio=1.5, measured_in_this_run=True)
    got = CF_METRICS.get("cost")(_batch([10.0, 3.0, 0.0], [0.0, 3.0, 0.0]), ctx)
    assert got.dtype == torch.float64 and got.tolist() == [10.0, 3.0 + 4.5, 0.0]
    assert C._provenance(ctx) == {"cost": dict(ratio=1.5, measured_in_this_run=True)}


def test_backward_forward_ratio_of_the_cnn(cnn, errors):
    """A backward pass to the input costs about one to three forwards on a CNN (measured, not asserted tightly)."""
    from metrics.cost import backward_forward_ratio

    out = backward_forward_ratio(cnn[0], errors.x[:8], rows=64, repeats=2)
    assert 0.2 < out["ratio"] < 10 and out["forward_s"] > 0 and out["forward_backward_s"] > out["forward_s"] * 0.9
    assert not any(p.requires_grad for p in cnn[0].parameters())


def test_cost_metric_measures_once_per_run_and_records_it(cnn, errors):
    from bench.contract.oracle import Oracle
    from metrics import cost as C

    ctx = MetricContext(oracle=Oracle(cnn[0], "cpu"))
    b = _batch([5.0, 5.0], [5.0, 0.0])
    b.x = errors.x[:2]
    first = CF_METRICS.get("cost")(b, ctx)
    r = ctx.memo[C._KEY]["ratio"]
    assert first.tolist() == pytest.approx([5.0 + 5 * r, 5.0])
    assert CF_METRICS.get("cost")(b, ctx).tolist() == first.tolist()  # the same ratio for the whole run
    assert C._provenance(ctx)["cost"]["measured_in_this_run"] is True


def test_plausibility_provenance_hooks_load_what_resumed_scores_came_from(mnist, cnn, cache_dir):
    """Every score resumed from the store: no metric ran, the memo is empty, yet each hook records its model
    and its quality (this was `{}` on every published board)."""
    from bench.context import metric_context
    from bench.contract.oracle import Oracle

    ctx = metric_context(mnist, Oracle(cnn[0], "cpu"), "cpu", cache_dir=cache_dir, seed=0, dataset="mnist")
    assert P.plausibility_provenance(ctx) == {}
    prov = {}
    for name in ("knn_ratio", "im1", "im1_class", "l2_ae", "im2", "oracle_agreement"):
        prov.update(CF_METRICS.get(name).provenance(ctx))  # what the pipeline does, hook after hook
    p = prov["plausibility"]
    assert set(p) == {"knn", "autoencoders", "second_classifier"}
    errors = p["autoencoders"]["test_recon_sq_l2"]
    assert set(errors) == {str(c) for c in range(10)} | {"all"} and all(v > 0 for v in errors.values())
    assert 0.97 < p["second_classifier"]["test_accuracy"] <= 1.0
    # a context without data (a metric used by hand) records nothing and builds nothing
    assert CF_METRICS.get("im1").provenance(MetricContext()) == {"plausibility": {}}


def test_im1_class_and_l2_ae_on_real_digits(mnist, cnn, cache_dir, errors):
    """A real test digit of the target class: class-normalised IM1 below 1 on most errors; the metrics'
    metadata follow the contract (float64, n, cpu, valid-only, lower is better)."""
    from bench.context import metric_context
    from bench.contract.oracle import Oracle

    ctx = metric_context(mnist, Oracle(cnn[0], "cpu"), "cpu", cache_dir=cache_dir, seed=0, dataset="mnist")
    x, target = errors.x[:30], errors.true[:30]
    first = {c: int((mnist.test.y == c).nonzero()[0]) for c in range(10)}
    x_cf = mnist.test.x[torch.tensor([first[int(t)] for t in target])]
    z = torch.zeros(30, dtype=torch.float64)
    b = CFBatch(x=x, x_cf=x_cf, target=target, probs_cf=ctx.oracle.probs(x_cf), queries=z, grad_queries=z, seconds=z)
    for name in ("im1_class", "l2_ae"):
        fn = CF_METRICS.get(name)
        out = fn(b, ctx)
        assert out.dtype == torch.float64 and out.shape == (30,) and torch.isfinite(out).all()
        assert fn.valid_only and not fn.higher_is_better and fn.version == "1" and fn.definition
    assert (CF_METRICS.get("im1_class")(b, ctx) < 1).float().mean() > 0.8


def test_amortised_lines_price_gradient_queries():
    """A white-box solver's back-propagations count: with r = 2, gradient at 7 queries + 7 gradient queries
    costs 21 per error, so a fitted solver at 2 per error after 650,000 fit rows breaks even after
    ceil(650,000 / 19) = 34,211 errors, not after ceil(650,000 / 5) = 130,000 (queries only)."""
    import numpy as np
    import pandas as pd

    from bench.leaderboard import EntryScores
    from bench.tasks.cost import amortised_columns, amortised_note

    idx = np.arange(4)
    grad = EntryScores("gradient", "", "1", idx, np.ones(4, bool),
                       dict(queries=np.full(4, 7.0), grad_queries=np.full(4, 7.0), cost=np.full(4, 21.0),
                            seconds=np.full(4, 0.02)))
    rl = EntryScores("alibi_rl", "", "1", idx, np.ones(4, bool),
                     dict(queries=np.full(4, 2.0), grad_queries=np.zeros(4), cost=np.full(4, 2.0), seconds=np.zeros(4)))
    entries = [dict(method="gradient", n=4, fit_queries=0.0, fit_seconds=0.0),
               dict(method="alibi_rl", n=4, fit_queries=650_000.0, fit_seconds=600.0)]
    df, info = amortised_columns(pd.DataFrame(dict(method=["gradient", "alibi_rl"])), [grad, rl], entries)
    assert df["amortised_cost"].tolist() == [21.0, 650_000 / 4 + 2.0]
    lines = amortised_note(info, ratio=2.0)
    assert "Costs less than gradient after 34,211 errors" in lines[0] and "forward-pass equivalents" in lines[0]
    assert "r = 2.00 measured in this run" in lines[1]
    plain = {m: {k: v for k, v in a.items() if k not in ("cost", "amortised_cost")} for m, a in info.items()}
    assert "Fewer queries than gradient after 130,000 errors" in amortised_note(plain)[0]
