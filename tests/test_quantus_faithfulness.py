"""metrics.quantus_faithfulness against its reference, Quantus 0.6 itself (metrics.quantus_reference).

Real maps (saliency, input x gradient, a map of mostly exact zeros) of the real default CNN on
real MNIST errors; 150 rows (the errors, then correct test images) cross run_quantus' 128-row
chunks. Equal means: same shape, float64, the same NaN rows, and |fast - Quantus| <= a tolerance
elsewhere. Quantus always runs the eager module (oracle.unwrap()); the fast path runs whatever the
oracle runs, so each reference is compared with two oracles:
- EAGER (Oracle(fast=False), the same module; on the smaller cases): ATOL = 1e-6. The perturbed inputs, float32 sums and
  float32 drops are then Quantus' own (measured bitwise equal); what is left is Quantus' Pearson in
  float32 (scipy.stats.pearsonr keeps the inputs' dtype) against ours in float64: <= ~2e-7 here.
- the default oracle (its frozen TorchScript copy, conv+bn folded, oneDNN): ATOL_TS = 1e-5. Its logits
  differ from the eager module's by float rounding (up to ~3e-6 on these errors), and a Pearson
  over only 6 runs moved by up to 2.3e-6 (<= 5e-7 with 20+ runs or 28 groups; measured).
Known answers: exact analytic values on real and on tiny hand-built models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.contract.metrics import AttrBatch, MetricContext
from bench.contract.oracle import Oracle
from metrics import quantus_faithfulness as F
from metrics import quantus_reference as Q
from metrics.deletion_insertion import deletion_curves
from solvers import ATTRIBUTIONS
from tests.test_attribution_metrics import saliency_fn

ATOL = 1e-6  # eager oracle: Quantus' float32 Pearson against our float64 one
ATOL_TS = 1e-5  # the oracle's TorchScript copy: its float rounding of the logits on top


def make_batch(oracle, x, t, attr, method):
    return AttrBatch(x=x, attr=attr, explained=t, seconds=torch.zeros(len(x)), method=method,
                     explain_fn=saliency_fn(oracle))


@pytest.fixture(scope="module")
def o(cnn):
    return Oracle(cnn[0], "cpu")


@pytest.fixture(scope="module")
def eager(cnn):
    return Oracle(cnn[0], "cpu", fast=False)


@pytest.fixture(scope="module")
def rows150(o, mnist, errors):
    """x, explained: the real errors, then correct test images up to 150 rows (chunks of 128 + 22)."""
    x_test, y_test = mnist.test.x[:300], mnist.test.y[:300]
    pred = o.predict(x_test).cpu()
    correct = (pred == y_test).nonzero()[:, 0][: max(0, 150 - len(errors.x))]
    x = torch.cat([errors.x, x_test[correct]])[:150]
    t = torch.cat([errors.pred, pred[correct]])[:150]
    assert len(x) == 150
    return x, t


@pytest.fixture(scope="module")
def saliency150(o, rows150):
    x, t = rows150
    return make_batch(o, x, t, saliency_fn(o)(x, t), "saliency")


@pytest.fixture(scope="module")
def ixg150(o, rows150):
    x, t = rows150
    return make_batch(o, x, t, ATTRIBUTIONS.get("input_x_gradient")(o)(x, t, None).attr, "input_x_gradient")


@pytest.fixture(scope="module")
def tied(o, errors):
    """12 errors; saliency kept on its top 60 pixels, cut to 3 levels, exact 0 elsewhere; row 2 all zero."""
    x, t = errors.x[:12], errors.pred[:12]
    a = saliency_fn(o)(x, t).flatten(1)
    top = a.topk(60, dim=1).indices
    keep = torch.zeros_like(a).scatter_(1, top, 1.0)
    levels = torch.ceil(3 * a / a.max(1, keepdim=True).values) * keep
    levels[2] = 0.0
    return make_batch(o, x, t, levels.view_as(x), "tied")


def ctx_of(oracle, seed=0):
    return MetricContext(oracle=oracle, seed=seed)


def assert_same(ref: torch.Tensor, got: torch.Tensor, atol: float = ATOL) -> None:
    assert got.dtype == torch.float64 and got.shape == ref.shape
    assert torch.equal(torch.isnan(ref), torch.isnan(got)), "NaN rows differ"
    fin = ~torch.isnan(ref)
    assert fin.any()
    diff = float((ref[fin] - got[fin]).abs().max())
    assert diff <= atol, f"max |fast - quantus| = {diff:.3g} > {atol}"


# -- equal to Quantus -----------------------------------------------------------------------------

def check(ref_fn, fast_fn, b, o, eager=None, seed=0, **kw):
    """Quantus once; the fast path through the default oracle and (given) the eager one. Returns the default's."""
    ref = ref_fn(b, ctx_of(o, seed), **kw)
    if eager is not None:
        assert_same(ref.flatten(), fast_fn(b, ctx_of(eager, seed), **kw).flatten(), ATOL)
    got = fast_fn(b, ctx_of(o, seed), **kw)
    assert_same(ref.flatten(), got.flatten(), ATOL_TS)
    return got


def test_estimate_equals_quantus_at_board_defaults_on_150_rows(o, saliency150):
    check(Q.faithfulness_estimate, F.faithfulness_estimate, saliency150, o)


def test_pixel_flipping_equals_quantus_at_board_defaults(o, ixg150):
    b = make_batch(o, ixg150.x[:40], ixg150.explained[:40], ixg150.attr[:40], "input_x_gradient")
    curves = check(Q.pixel_flipping_curves, F.pixel_flipping_curves, b, o)
    assert curves.shape == (40, 28)
    np.testing.assert_allclose(F.pixel_flipping(b, ctx_of(o)).numpy(), np.trapz(curves.numpy(), axis=1) / 27, atol=0)


def test_correlation_equals_quantus_across_chunks(o, eager, ixg150):
    """nr_runs=6 (fewer runs, the same draws per run): the 128-row chunking and the RNG stream across it."""
    check(Q.faithfulness_correlation, F.faithfulness_correlation, ixg150, o, eager, seed=5, nr_runs=6)


def test_monotonicity_equals_quantus_across_chunks(o, saliency150):
    """7 groups of 112 pixels, 2 draws each (fewer rows; the same draw order: group, draw, image)."""
    check(Q.monotonicity_correlation, F.monotonicity_correlation, saliency150, o,
          features_in_step=112, nr_samples=2)


def test_all_four_equal_quantus_on_a_map_of_ties_and_zeros(o, eager, tied):
    """Exact ties (stable order, average ranks) and an all-zero map (row 2: NaN for the correlations)."""
    fc = check(Q.faithfulness_correlation, F.faithfulness_correlation, tied, o, eager, seed=1, nr_runs=10)
    fe = check(Q.faithfulness_estimate, F.faithfulness_estimate, tied, o, eager, seed=1)
    mc = check(Q.monotonicity_correlation, F.monotonicity_correlation, tied, o, eager, seed=1, nr_samples=2)
    check(Q.pixel_flipping_curves, F.pixel_flipping_curves, tied, o, eager, seed=1)
    for baseline in ("uniform", "mean"):  # Quantus' string baselines: a draw per step, the current image's mean
        check(Q.pixel_flipping_curves, F.pixel_flipping_curves, tied, o, seed=1, baseline=baseline)
    for s in (fc, fe, mc):
        assert torch.isnan(s[2]) and int(torch.isnan(s).sum()) == 1


def test_rows_per_oracle_call_do_not_change_the_scores(o, tied, monkeypatch):
    """Memory is bounded by building at most F.ROWS perturbed rows per oracle call: blocks of runs,
    groups or steps; a tiny ROWS splits every chunk into many blocks (the RNG stream runs on)."""
    calls = [lambda c: F.faithfulness_correlation(tied, c, nr_runs=10),
             lambda c: F.faithfulness_estimate(tied, c),
             lambda c: F.monotonicity_correlation(tied, c, nr_samples=2),
             lambda c: F.pixel_flipping_curves(tied, c, baseline="uniform")]
    whole = [call(ctx_of(o, seed=2)) for call in calls]
    monkeypatch.setattr(F, "ROWS", 30)
    for call, ref in zip(calls, whole):
        assert_same(ref.flatten(), call(ctx_of(o, seed=2)).flatten(), ATOL)


def test_quantus_spearman_fails_on_a_chunk_whose_second_row_is_constant(o, tied):
    """The one documented difference: scipy's chunk-wide spearmanr tests rows 0 and 1 only, returns a
    float NaN for the whole chunk when one is constant, and Quantus then fails on `.shape`."""
    b = make_batch(o, tied.x[1:4], tied.explained[1:4], tied.attr[1:4], "tied")  # its row 1 is all zero
    ctx = ctx_of(o)
    with pytest.raises(AttributeError, match="shape"):
        Q.monotonicity_correlation(b, ctx, nr_samples=1)
    got = F.monotonicity_correlation(b, ctx, nr_samples=1)
    assert got.shape == (3,) and torch.isnan(got[1]) and not torch.isnan(got[[0, 2]]).any()


# -- known answers --------------------------------------------------------------------------------

def row_drops(model, x, t):
    """logit_t(x) - logit_t(x with pixel row r set to 0) for r = 0..27: the eager model on 28 copies of each image."""
    n = len(x)
    copies = x[:, None].repeat(1, 28, 1, 1, 1)  # (n, 28 rows zeroed one each, C, H, W)
    copies[:, torch.arange(28), :, torch.arange(28), :] = 0.0
    with torch.no_grad():
        base = model(x).gather(1, t.view(-1, 1))
        out = model(copies.flatten(0, 1)).view(n, 28, -1)
    return base - out.gather(2, t.view(-1, 1, 1).expand(n, 28, 1))[..., 0]


def test_estimate_is_one_for_a_map_of_each_groups_logit_drop(o, errors):
    """Each pixel row is one group when the map is constant on rows (ties keep pixel order): a map
    equal to each row's logit drop gives exactly Pearson 1, its negation -1 (Quantus and fast)."""
    x, t = errors.x[:6], errors.pred[:6]
    drops = row_drops(o.unwrap(), x, t)
    attr = drops[:, None, :, None].expand(-1, 1, 28, 28).contiguous()
    ctx = ctx_of(o)
    for sign in (1.0, -1.0):
        b = make_batch(o, x, t, sign * attr, "row drops")
        for s in (F.faithfulness_estimate(b, ctx), Q.faithfulness_estimate(b, ctx)):
            np.testing.assert_allclose(s.numpy(), sign, atol=1e-5)


class Linear(nn.Module):
    """logits (w . x, 0): a logit drop is exactly the sum of w * x over the removed pixels."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x):
        z = (x.flatten(1) * self.w.flatten()).sum(1, keepdim=True)
        return torch.cat([z, torch.zeros_like(z)], 1)


def test_correlation_is_one_for_input_x_weight_of_a_linear_model(errors):
    x = errors.x[:5]
    w = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    lin = Oracle(Linear(w), "cpu")
    b = make_batch(lin, x, torch.zeros(5, dtype=torch.long), x * w, "x*w")
    for s in (F.faithfulness_correlation(b, ctx_of(lin), nr_runs=20),
              Q.faithfulness_correlation(b, ctx_of(lin), nr_runs=20)):
        np.testing.assert_allclose(s.numpy(), 1.0, atol=1e-5)


def test_correlation_of_the_negated_map_is_negated_exactly(o, tied, saliency150):
    b = make_batch(o, saliency150.x[:8], saliency150.explained[:8], saliency150.attr[:8], "saliency")
    neg = make_batch(o, b.x, b.explained, -b.attr, "-saliency")
    ctx = ctx_of(o)
    pos_s, neg_s = F.faithfulness_correlation(b, ctx, nr_runs=10), F.faithfulness_correlation(neg, ctx, nr_runs=10)
    np.testing.assert_allclose(neg_s.numpy(), -pos_s.numpy(), atol=1e-12)


class LastRow(nn.Module):
    """Two classes, logits (s, -s) with s = mean of pixel row 27 - 1/2: only that row matters."""

    def forward(self, x):
        s = x[:, 0, 27, :].mean(1, keepdim=True) - 0.5
        return torch.cat([s, -s], 1)


def test_monotonicity_known_value_with_ties_in_the_variances(errors):
    """Map constant on rows, increasing with the row: the groups, least important first, are rows
    0..27; only row 27 changes the output, so var is 0 for 27 groups (tied, average rank 14) and > 0
    for the last: Spearman = 13.5 / sqrt(1827 * 27/28) (an indicator against ranks 1..28); the map
    decreasing with the row puts row 27 first: the negation."""
    x = errors.x[:4]
    lr = Oracle(LastRow(), "cpu")
    rho = 13.5 / np.sqrt(28 * 783 / 12 * 27 / 28)
    up = torch.arange(1.0, 29.0)[None, None, :, None].expand(4, 1, 28, 28).contiguous()
    for attr, want in ((up, rho), (29.0 - up, -rho)):
        b = make_batch(lr, x, torch.zeros(4, dtype=torch.long), attr, "rows")
        for s in (F.monotonicity_correlation(b, ctx_of(lr), nr_samples=3),
                  Q.monotonicity_correlation(b, ctx_of(lr), nr_samples=3)):
            np.testing.assert_allclose(s.numpy(), want, atol=1e-12)


def test_pixel_flipping_is_the_deletion_curve_without_its_first_point(o, tied, saliency150):
    """An independent implementation (metrics.deletion_insertion, RISE's): Quantus' black = 0 on MNIST."""
    for b in (tied, make_batch(o, saliency150.x[:12], saliency150.explained[:12], saliency150.attr[:12], "s")):
        ours = deletion_curves(o, b.x, b.attr, b.explained)
        curves = F.pixel_flipping_curves(b, ctx_of(o))
        np.testing.assert_allclose(curves.numpy(), ours[:, 1:].numpy(), atol=1e-6)
        np.testing.assert_allclose(F.pixel_flipping_curves(b, ctx_of(o), baseline="black").numpy(), curves.numpy(),
                                   atol=0)
        np.testing.assert_allclose(F.pixel_flipping(b, ctx_of(o)).numpy(),
                                   np.trapz(curves.numpy(), axis=1) / 27, atol=0)


# -- RNG --------------------------------------------------------------------------------------------

def test_global_rng_untouched_and_results_depend_on_ctx_seed_only(o, tied):
    calls = [lambda c: F.faithfulness_correlation(tied, c, nr_runs=4),
             lambda c: F.faithfulness_estimate(tied, c),
             lambda c: F.monotonicity_correlation(tied, c, nr_samples=1),
             lambda c: F.pixel_flipping_curves(tied, c, baseline="uniform")]
    for call in calls:
        np.random.seed(123)
        torch.manual_seed(7)
        np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
        first = call(ctx_of(o, seed=0))
        after = np.random.get_state()
        assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
        assert torch.equal(torch.random.get_rng_state(), torch_state)
        np.random.seed(999)  # another global state: the same scores
        again = call(ctx_of(o, seed=0))
        assert torch.equal(torch.isnan(first), torch.isnan(again))
        np.testing.assert_array_equal(first[~torch.isnan(first)].numpy(), again[~torch.isnan(again)].numpy())
    fc0, fc1 = (F.faithfulness_correlation(tied, ctx_of(o, seed=s), nr_runs=4) for s in (0, 1))
    assert not torch.allclose(fc0[~torch.isnan(fc0)], fc1[~torch.isnan(fc1)])


def test_bad_parameters_are_refused(o, tied):
    with pytest.raises(ValueError, match="features_in_step"):
        F.faithfulness_estimate(tied, ctx_of(o), features_in_step=27)
    with pytest.raises(ValueError, match="subset_size"):
        F.faithfulness_correlation(tied, ctx_of(o), subset_size=784)
    with pytest.raises(ValueError, match="perturb_baseline"):
        F.pixel_flipping_curves(tied, ctx_of(o), baseline="random")
