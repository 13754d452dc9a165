"""Batched re-implementations of four Quantus 0.6 faithfulness metrics, held equal to Quantus.

Quantus (metrics.quantus_metrics, through metrics._quantus_impl.run_quantus) is the REFERENCE:
these functions compute the same numbers with the same parameters, only faster. Quantus walks a
chunk of 128 images one perturbation step (or one run, or one draw) at a time, one 128-row model
call each; here every perturbed input of a chunk is built first in numpy and all of them go through
`ctx.oracle.logits` / `ctx.oracle.probs` in large batches (the oracle splits them into its own
batches; a metric oracle's counts are charged to no method). Rows that Quantus evaluates but whose
input is bitwise the input of a row already evaluated (a removal step whose pixels already equal the
baseline: MNIST's black background) are not evaluated again: the model is deterministic, so Quantus
gets the very same output there (FaithfulnessEstimate: a drop of exactly 0; PixelFlipping: the
previous step's value).

What each computes (x: (N,C,H,W) in [0,1], y = b.explained, D = C*H*W features; a = b.attr,
divided per sample by its own max |a| (metrics._quantus_impl.normalise_per_sample), then |.| where
abs=True; f = the model's logits, or softmax probabilities where said; "0" = perturb_baseline 0.0,
Quantus' "black" = the per-sample min, 0 on MNIST):

- faithfulness_correlation (Quantus FaithfulnessCorrelation, Bhatt et al. 2020): nr_runs=100 random
  subsets S of subset_size=112 pixels (np.random.choice(D, 112, replace=False) per run per image);
  Pearson over the runs of sum_S a against f_y(x) - f_y(x with S set to 0); logits, abs=False.
- faithfulness_estimate (FaithfulnessEstimate, Alvarez-Melis & Jaakkola 2018): the D/28 groups of
  features_in_step=28 pixels in order of decreasing a (stable argsort of -a), each set to 0 alone;
  Pearson of the group's sum a against the logit drop; logits, abs=False.
- monotonicity_correlation (MonotonicityCorrelation, Nguyen & Martinez 2020): the groups of 28
  pixels in order of INCREASING |a| (stable argsort of a after abs); each group alone is set to one
  U(0,1) value per image and draw ("uniform": np.random.uniform(size=N_chunk) per group and draw),
  nr_samples=10 draws; var = mean_draws (p_y(x') - p_y(x))^2 / p_y(x)^2 (1/p_y only where
  p_y >= eps=1e-5); Spearman (average ranks on ties, scipy.stats.spearmanr) of the group's sum |a|
  against var; softmax probabilities, abs=True.
- pixel_flipping_curves (PixelFlipping, Bach et al. 2015): the groups of 28 pixels in order of
  decreasing a, set to `baseline` cumulatively; p_y after each step, float64 (N, D/28); no
  unperturbed point; normalise=False, abs=False, softmax. pixel_flipping = np.trapz(curve) / (len - 1).

Exactly as run_quantus does: images in chunks of 128 rows; the draws come from numpy's legacy RNG
seeded with ctx.seed once before the first chunk and continued across chunks in Quantus' order
(here a private np.random.RandomState(ctx.seed), the same stream as np.random.seed(ctx.seed); the
global numpy and torch RNG states are never touched); every argsort is kind="stable" (run_quantus
makes Quantus' np.argsort stable: tied pixels keep pixel order); float32 inputs, outputs, sums and
differences as Quantus has them (the cheap numpy steps in Quantus' own array shapes, so they round
alike); string baselines ("black", "white", "mean", "uniform") as Quantus' batched
get_baseline_value, which draws U(0,1) (size N_chunk) for every string baseline, used or not.

Differences kept on purpose (Quantus' output there is unusable): a constant row (an all-zero map)
gives NaN in that row only. Quantus' Spearman (scipy.stats.spearmanr(a, b, axis=1) on the whole
chunk) checks only the first two rows of the stacked (atts; vars) for constancy, and when one of
them is constant scipy returns a bare float NaN for the whole chunk, on which Quantus then fails
(AttributeError: 'float' object has no attribute 'shape'); a constant row further down is NaN in
Quantus too. MonotonicityCorrelation also raises in Quantus when some but not all p_y < eps (its
masked assignment has the wrong length); here 1/p_y is used where p_y >= eps, 1 elsewhere, as
Quantus' code means.

Tolerance. The perturbed inputs, the float32 attribution sums and the float32 output differences
are Quantus' own: with an eager oracle (Oracle(model, fast=False), the module Quantus runs) they
came out bitwise equal (checked: scipy's float32 Pearson on our sums and drops gave Quantus'
FaithfulnessCorrelation exactly; the pixel-flipping curves were identical), and what is left is the correlation's arithmetic: Quantus'
scipy.stats.pearsonr works in its inputs' float32, ours in float64 (<= 2.4e-7 apart at the board's
defaults); Spearman ranks are exact, both correlations of ranks are float64 (<= 2e-16). The default
oracle evaluates through its frozen TorchScript copy (bench.contract.oracle: conv+bn folding,
oneDNN), whose logits differ from the eager module's by float rounding (up to ~3e-6 on the 91
errors); that moved FaithfulnessEstimate by <= 4.6e-7 and the pixel-flipping probabilities by
<= 4.8e-7 at the board's defaults, and a Pearson over only 6 runs by up to 2.3e-6 (150 rows,
ig / saliency / input x gradient, measured).

Equality test (tests/test_quantus_faithfulness.py): real maps (saliency, input x gradient, a map of
mostly exact zeros with an all-zero row) of the real default CNN on real MNIST errors, 150 rows
(the errors, then correct test images) for the 128-row chunks and the RNG stream across them;
same shape, same NaN rows, |fast - Quantus| <= 1e-6 through the eager oracle and <= 1e-5 through
the default one. Known answers: FaithfulnessEstimate = +-1 for a map equal to (minus) each pixel
row's logit drop; FaithfulnessCorrelation = 1 for w * x on a linear model, and exactly negated
for the negated map; MonotonicityCorrelation = +-13.5 / sqrt(1827 * 27/28) on a model that reads
pixel row 27 only (27 tied zero variances); PixelFlipping = metrics.deletion_insertion's curve
without its first point. The global numpy and torch RNG states are unchanged by a call.

Speed (benchmarks/test_quantus_faithfulness.py, one run on 2026-12-01, this shared 2-core CPU box,
the default CNN, saliency on its 91 MNIST errors, board defaults, the default oracle; seconds per
instance, interleaved best of 3):

    metric                      Quantus    fast    Quantus / fast
    faithfulness_correlation    0.0148    0.0051        2.9
    faithfulness_estimate       0.0038    0.0010        3.9
    monotonicity_correlation    0.0343    0.0111        3.1
    pixel_flipping              0.0045    0.0009        5.2

Both sides evaluate the same perturbed rows (but for the ~25% of FaithfulnessEstimate's and
PixelFlipping's rows here that repeat an input already evaluated), so the gain is the oracle's TorchScript
forward and large batches instead of Quantus' 128-row calls; the model's forward is now nearly all
of the time (FaithfulnessCorrelation: ~20% is reproducing Quantus' 100 x N np.random.choice draws).
On a busy machine single timings swung 3-5x (an earlier run of the same code but the row blocks:
2.7, 4.1, 3.4, 3.8); the ratios above are from a quiet minute. Command:
pytest benchmarks/test_quantus_faithfulness.py -o addopts= --benchmark-only
--benchmark-json=.benchmarks/quantus_faithfulness.json, then
python -m benchmarks.test_quantus_faithfulness .benchmarks/quantus_faithfulness.json.

Note on MonotonicityCorrelation's degeneracy (measured here on the 91 errors, seed 0): IG with its
zero baseline is exactly 0 on the ~633 background pixels of an image (x = 0), so 22.1 of the 28
groups tie at 0 (average rank); the "uniform" baseline sets those groups to U(0,1), i.e. adds ink,
and they carry 78% of the summed variance (mean variance rank 14.3 against 15.0 for IG's 6
nonzero groups). Among its nonzero groups IG's order is right (Spearman 0.53), but over all 28
it gets 0.064 (random: 0.007..0.020 over seeds 0..2). Breaking IG's zero ties by 1e-6 x saliency,
nothing else changed, gives 0.594 (saliency itself 0.655: |grad| is nonzero on the background).
It is not the 10 draws (100 draws: 0.056; per-image SD across seeds 0.037) nor abs (the variance is
sign-blind). The metric asks how adding ink where there is none moves p, which a black-baseline
method (IG, input x gradient: 0.067) is blind to by construction.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata

from bench.contract.metrics import AttrBatch, MetricContext
from metrics._quantus_impl import normalise_per_sample

CHUNK = 128  # rows per Quantus call, as run_quantus (its batch_size)
STEP = 28  # pixels per step on 28x28, as metrics.quantus_metrics
ROWS = 8192  # perturbed rows built per oracle call at most (~26 MB of float32 on MNIST): bounded memory


# -- inputs, model outputs, baselines -----------------------------------------------------------

def _inputs(b: AttrBatch, normalise: bool, abs_: bool):
    """x float32 (N,C,H,W), y int64 (N,), a float32 (N, D): Quantus' general_preprocess on b.

    Quantus normalises, then takes |a| (both per sample here), then broadcasts a to x's shape.
    """
    x = b.x.detach().cpu().float().numpy()
    y = b.explained.detach().cpu().numpy().astype(np.int64)
    a = b.attr.detach().cpu().float().numpy()
    if a.ndim < x.ndim:  # a map without its channel axis: Quantus adds it
        a = a[:, None]
    if normalise:
        a = normalise_per_sample(a)
    if abs_:
        a = np.abs(a)
    a = np.broadcast_to(a, x.shape) if a.shape != x.shape else a
    return x, y, np.ascontiguousarray(a).reshape(len(a), int(np.prod(x.shape[1:])))


def _outputs(ctx: MetricContext, rows: np.ndarray, shape: tuple, softmax: bool) -> np.ndarray:
    """The model's float32 outputs (M, K) on rows (M, D): probabilities or logits, batched by the oracle."""
    if len(rows) == 0:
        return np.zeros((0, ctx.oracle.n_classes or 10), np.float32)
    t = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).view(len(rows), *shape)
    out = ctx.oracle.probs(t) if softmax else ctx.oracle.logits(t)
    return out.detach().cpu().numpy()


def _fill(value, arr: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Quantus' batched get_baseline_value(value, arr (B, D)) as (B, 1) values.

    A number is itself; a string draws U(0,1) of size B from rng first (Quantus' get_baseline_dict
    builds its whole dict, the uniform draw included, whatever string is asked), then picks
    "mean" / "black" (min) / "white" (max) of each row of arr, or the draw ("uniform").
    """
    if isinstance(value, str):
        u = rng.uniform(low=0.0, high=1.0, size=len(arr))
        key = value.lower()
        fill = {"mean": lambda: arr.mean(axis=1), "uniform": lambda: u, "black": lambda: arr.min(axis=1),
                "white": lambda: arr.max(axis=1)}
        if key not in fill:
            raise ValueError(f"perturb_baseline {value!r}: use a number or one of {sorted(fill)}")
        return np.asarray(fill[key]())[:, None]
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return np.full((len(arr), 1), value)
    raise ValueError(f"perturb_baseline must be a number or a string, got {type(value).__name__}")


def _check_step(features_in_step: int, shape: tuple) -> None:
    hw = int(np.prod(shape[1:]))  # Quantus' assert_features_in_step on x.shape[2:]
    if features_in_step < 1 or hw % features_in_step:
        raise ValueError(f"features_in_step={features_in_step} must divide the image size {hw}")


def _chunks(n: int):
    for lo in range(0, n, CHUNK):
        yield slice(lo, min(n, lo + CHUNK))


# -- correlations, per row ----------------------------------------------------------------------

def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair, float64 (B,), as scipy.stats.pearsonr(a, b, axis=1).

    NaN where a row of a or b is constant (compared in the inputs' own dtype, as scipy does);
    clipped to [-1, 1]; rounded to +-1 for 2 observations (scipy's special case).
    """
    if a.shape[1] < 2:
        raise ValueError("a correlation needs at least 2 observations per row (scipy.stats.pearsonr)")
    const = (a == a[:, :1]).all(1) | (b == b[:, :1]).all(1)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    am = a64 - a64.mean(1, keepdims=True)
    bm = b64 - b64.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (am * bm).sum(1) / np.sqrt((am * am).sum(1) * (bm * bm).sum(1))
    r = np.clip(r, -1.0, 1.0)
    r[const] = np.nan
    return np.round(r) if a.shape[1] == 2 else r


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rho of each row pair, float64 (B,): Pearson of the average ranks (scipy.stats.spearmanr).

    NaN where a row is constant or holds a NaN. (Quantus' chunk-wide spearmanr fails on a chunk
    whose first or second row is constant; see the module docstring.)
    """
    ra = rankdata(np.asarray(a, np.float64), method="average", axis=1)  # NaN in a row: a NaN row
    rb = rankdata(np.asarray(b, np.float64), method="average", axis=1)
    const = (a == a[:, :1]).all(1) | (b == b[:, :1]).all(1)
    am, bm = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (am * bm).sum(1) / np.sqrt((am * am).sum(1) * (bm * bm).sum(1))
    r[const] = np.nan
    return r


def _scores(parts: list[np.ndarray]) -> torch.Tensor:
    s = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    s[~np.isfinite(s)] = np.nan  # as metrics._quantus_impl.as_scores
    return torch.from_numpy(s)


# -- the four metrics ---------------------------------------------------------------------------

def faithfulness_correlation(b: AttrBatch, ctx: MetricContext, nr_runs: int = 100, subset_size: int = 112,
                             perturb_baseline=0.0) -> torch.Tensor:
    """Quantus FaithfulnessCorrelation (q_faithfulness_correlation's settings), float64 (N,) in [-1, 1]."""
    x, y, a = _inputs(b, normalise=True, abs_=False)
    n, shape = len(x), tuple(x.shape[1:])
    d = a.shape[1]
    if subset_size >= int(np.prod(x.shape[2:])):
        raise ValueError(f"'subset_size' must be smaller than input size. [{subset_size} >= {np.prod(x.shape[2:])}]")
    rng = np.random.RandomState(ctx.seed)
    out = []
    for rows in _chunks(n):
        xc, yc, ac = x[rows].reshape(-1, d), y[rows], a[rows]
        bsz = len(xc)
        ar = np.arange(bsz)
        y_pred = _outputs(ctx, xc, shape, softmax=False)[ar, yc]
        deltas, sums = [], []
        per_call = max(1, ROWS // bsz)  # runs per oracle call: ~ROWS rows, bounded memory
        for r0 in range(0, nr_runs, per_call):
            runs = min(nr_runs, r0 + per_call) - r0
            idx = np.empty((runs, bsz, subset_size), np.int64)
            pert = np.repeat(xc[None], runs, axis=0)  # (runs, B, D)
            for r in range(runs):  # Quantus' draws in its order: B subsets, then the run's baseline
                # np.random.choice(d, k, replace=False) is permutation(d)[:k] in numpy's legacy RandomState
                idx[r] = np.stack([rng.permutation(d)[:subset_size] for _ in range(bsz)])
                pert[r, ar[:, None], idx[r]] = _fill(perturb_baseline, xc, rng)
            fp = _outputs(ctx, pert.reshape(-1, d), shape, softmax=False).reshape(runs, bsz, -1)
            deltas += [y_pred - fp[r][ar, yc] for r in range(runs)]  # Quantus' arithmetic, in its shapes
            sums += [ac[ar[:, None], idx[r]].sum(axis=-1) for r in range(runs)]
        deltas, sums = np.stack(deltas, axis=1), np.stack(sums, axis=1)
        out.append(pearson_rows(sums, deltas))
    return _scores(out)


def _groups(a: np.ndarray, step: int, descending: bool) -> np.ndarray:
    """(B, D/step, step) pixel indices of each group, most (descending) or least important first."""
    order = np.argsort(-a if descending else a, axis=1, kind="stable")
    return order.reshape(len(a), -1, step)


def _grouped_chunks(b: AttrBatch, ctx: MetricContext, step: int, normalise: bool, abs_: bool, descending: bool):
    """Quantus' per-chunk view of a grouped metric: yields (xc, yc, ac, ar, groups, shape, rng) per 128 rows.

    xc (B, D) inputs, yc (B,) classes, ac (B, D) maps, ar = arange(B), groups (B, D/step, step) pixel
    indices (most important first when `descending`), the image shape, and the seeded RNG shared by
    all chunks (Quantus' global stream from np.random.seed(ctx.seed)).
    """
    x, y, a = _inputs(b, normalise=normalise, abs_=abs_)
    _check_step(step, x.shape[1:])
    shape, d = tuple(x.shape[1:]), a.shape[1]
    rng = np.random.RandomState(ctx.seed)
    for rows in _chunks(len(x)):
        xc, ac = x[rows].reshape(-1, d), a[rows]
        yield xc, y[rows], ac, np.arange(len(xc)), _groups(ac, step, descending), shape, rng


def faithfulness_estimate(b: AttrBatch, ctx: MetricContext, features_in_step: int = STEP,
                          perturb_baseline=0.0) -> torch.Tensor:
    """Quantus FaithfulnessEstimate (q_faithfulness_estimate's settings), float64 (N,) in [-1, 1]."""
    out = []
    for xc, yc, ac, ar, groups, shape, rng in _grouped_chunks(b, ctx, features_in_step, True, False, True):
        bsz, steps = len(xc), groups.shape[1]
        y_pred = _outputs(ctx, xc, shape, softmax=False)[ar, yc]
        yp = np.repeat(y_pred[:, None], steps, axis=1)  # an unchanged input: Quantus' drop is exactly 0
        per_call = max(1, ROWS // bsz)  # groups per oracle call: ~ROWS rows, bounded memory
        for s0 in range(0, steps, per_call):
            block = np.arange(s0, min(steps, s0 + per_call))
            pert = np.repeat(xc[:, None], len(block), axis=1)  # (B, groups, D), each group removed alone
            for j, s in enumerate(block):
                pert[ar[:, None], j, groups[:, s]] = _fill(perturb_baseline, xc, rng)
            changed = (pert != xc[:, None]).any(2)
            rr, jj = np.nonzero(changed)
            yp[rr, block[jj]] = _outputs(ctx, pert[changed], shape, softmax=False)[np.arange(len(rr)), yc[rr]]
        deltas = np.stack([y_pred - yp[:, s] for s in range(steps)], axis=1)
        sums = np.stack([ac[ar[:, None], groups[:, s]].sum(axis=-1) for s in range(steps)], axis=1)
        out.append(pearson_rows(sums, deltas))
    return _scores(out)


def monotonicity_correlation(b: AttrBatch, ctx: MetricContext, features_in_step: int = STEP,
                             nr_samples: int = 10, eps: float = 1e-5, perturb_baseline="uniform") -> torch.Tensor:
    """Quantus MonotonicityCorrelation (q_monotonicity_correlation's settings), float64 (N,) in [-1, 1]."""
    out = []
    for xc, yc, ac, ar, groups, shape, rng in _grouped_chunks(b, ctx, features_in_step, True, True, False):
        bsz, steps, d = len(xc), groups.shape[1], xc.shape[1]
        # all draws first, in Quantus' order: group, then draw, one baseline per image each
        fills = [[_fill(perturb_baseline, xc, rng) for _ in range(nr_samples)] for _ in range(steps)]
        y_pred = _outputs(ctx, xc, shape, softmax=True)[ar, yc]
        inv_pred = np.ones(bsz)
        big = np.abs(y_pred) >= eps
        inv_pred[big] = (1.0 / np.abs(y_pred))[big]
        inv_pred = inv_pred ** 2
        varis = []
        per_call = max(1, ROWS // (nr_samples * bsz))  # groups per oracle call: ~ROWS rows, bounded memory
        for s0 in range(0, steps, per_call):
            block = range(s0, min(steps, s0 + per_call))
            pert = np.repeat(xc[None, None], len(block), axis=0).repeat(nr_samples, axis=1)  # (groups, draws, B, D)
            for j, s in enumerate(block):
                for k in range(nr_samples):
                    pert[j, k, ar[:, None], groups[:, s]] = fills[s][k]
            f = _outputs(ctx, pert.reshape(-1, d), shape, softmax=True).reshape(len(block), nr_samples, bsz, -1)
            for j in range(len(block)):  # Quantus' per-group arithmetic, in its shapes
                y_pred_perturbs = np.stack([f[j, k][ar, yc] for k in range(nr_samples)], axis=1)
                varis.append(np.mean((y_pred_perturbs - y_pred[:, None]) ** 2, axis=1) * inv_pred)
        atts = np.stack([ac[ar[:, None], groups[:, s]].sum(axis=1) for s in range(steps)], axis=1)
        out.append(spearman_rows(atts, np.stack(varis, axis=1)))
    return _scores(out)


def pixel_flipping_curves(b: AttrBatch, ctx: MetricContext, features_in_step: int = STEP,
                          baseline=0.0) -> torch.Tensor:
    """Quantus PixelFlipping curves, float64 (N, D/step): p(explained) after each cumulative flip step.

    As metrics.quantus_metrics.pixel_flipping_curves (normalise=False, abs=False, softmax); the
    curve starts after the first step. A string baseline is taken from the current perturbed image
    at each step, as in Quantus.
    """
    out = []
    d = int(np.prod(b.x.shape[1:]))
    for xc, yc, _ac, ar, groups, shape, rng in _grouped_chunks(b, ctx, features_in_step, False, False, True):
        bsz, steps = len(xc), groups.shape[1]
        curve = np.empty((bsz, steps), np.float64)
        cur, last = xc, None
        per_call = max(1, ROWS // bsz)  # steps per oracle call: ~ROWS rows, bounded memory
        for s0 in range(0, steps, per_call):
            block = range(s0, min(steps, s0 + per_call))
            states = np.empty((bsz, len(block), d), xc.dtype)
            start = cur
            for j, s in enumerate(block):  # cumulative: a string baseline is taken from the current image
                cur = cur.copy()
                cur[ar[:, None], groups[:, s]] = _fill(baseline, cur, rng)
                states[:, j] = cur
            before = np.concatenate([start[:, None], states[:, :-1]], axis=1)
            evaluate = (states != before).any(2)
            if s0 == 0:
                evaluate[:, 0] = True  # the first step has no earlier output to reuse
            rr, jj = np.nonzero(evaluate)
            got = np.zeros((bsz, len(block)), np.float64)
            got[rr, jj] = _outputs(ctx, states[evaluate], shape, softmax=True)[np.arange(len(rr)), yc[rr]]
            for j, s in enumerate(block):  # an unchanged step repeats the last output (the same input)
                last = got[:, j] if last is None else np.where(evaluate[:, j], got[:, j], last)
                curve[:, s] = last
        out.append(curve)
    return torch.from_numpy(np.concatenate(out) if out else np.zeros((0, d // features_in_step)))


def pixel_flipping(b: AttrBatch, ctx: MetricContext, features_in_step: int = STEP, baseline=0.0) -> torch.Tensor:
    """q_pixel_flipping's score: np.trapz(curve) / (len(curve) - 1), float64 (N,) in [0, 1]."""
    c = pixel_flipping_curves(b, ctx, features_in_step, baseline)
    return torch.from_numpy(np.trapz(c.numpy(), axis=1) / max(1, c.shape[1] - 1))
