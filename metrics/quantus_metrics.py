"""Quantus 0.6 metrics behind the house signature (b, ctx, **params) -> float64 (N,).

Hedström et al. 2023, https://jmlr.org/papers/v24/22-0142.html. Every Quantus parameter
that changes a score is set here explicitly and documented per metric. The metrics a board
scores on every error run through bench's batched paths (metrics.quantus_faithfulness,
metrics.quantus_robustness, metrics.quantus_randomisation), each held equal to Quantus' own
result (metrics.quantus_reference, the same configuration run through Quantus; tested);
sparseness, complexity and relative output stability call Quantus directly. Common choices:
- re-explaining metrics call `b.explain_fn` (never `quantus.explain`, whose torch IG is
  fixed at 10 steps) through `explain_func(model, inputs, targets, **kw) -> np.ndarray`;
- "normalise" divides each map by its own max |a| (Quantus' default divides the whole batch
  by one max, which makes a score depend on its batch-mates); all-zero maps stay zero;
- NaN and +-inf from Quantus (#203) come back as NaN, never averaged here;
- numpy's and torch's global RNGs are seeded with ctx.seed and restored afterwards;
- images go to Quantus in chunks of `batch_size` (128) rows.
"""

from __future__ import annotations

from typing import Annotated

import torch

from bench.contract.metrics import AttrBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS, quantus_faithfulness, quantus_randomisation
from metrics._quantus_impl import NORM, as_scores, run_quantus
from metrics.quantus_robustness import avg_sensitivity, local_lipschitz, max_sensitivity

STEP = 28  # pixels per step on 28x28: 28 steps, as deletion_auc
# why sparseness and complexity have no meaningful control (bench.contract.metrics.metric(control=...))
HISTOGRAM_ONLY = ("a function of the map's value histogram alone: the matched null (the method's own values at "
                  "random positions) scores exactly the same, so no control can separate it; it measures "
                  "concentration, not correctness")
# why the robustness metrics have none
INPUT_INDEPENDENT = ("minimised (0) by any map that ignores the input, e.g. a constant or a fixed random map, and "
                     "maximal for a random map drawn afresh per input: every null is trivially beaten or trivially "
                     "wins; read it beside the method's faithfulness, never alone")


def _q(name, b, ctx, init, softmax, explain=False, batch_size=128):
    """Run one Quantus metric on b and return its float64 (N,) scores."""
    return as_scores(run_quantus(name, b, ctx, init, softmax=softmax, explain=explain, batch_size=batch_size))


@metric(ATTR_METRICS, higher_is_better=True, version="1",
        definition="Quantus FaithfulnessCorrelation: Pearson(sum attr on 100 random 112-px subsets, logit drop when set to 0)")
def q_faithfulness_correlation(b: AttrBatch, ctx: MetricContext, nr_runs: Annotated[int, Range("[1, 100000]")] = 100,
                               subset_size: Annotated[int, Range("[1, 784]")] = 112) -> torch.Tensor:
    """Faithfulness correlation (Bhatt et al. 2020, https://arxiv.org/abs/2005.00631).

    Quantus: nr_runs=100, subset_size=112 (1/7 of 784; Quantus' 224 is sized for 224x224),
    perturb_baseline=0.0 (= Quantus "black", the per-sample min, on MNIST), Pearson,
    abs=False, per-sample max normalise, logits (softmax=False). Returns (N,) in [-1, 1].
    """
    return quantus_faithfulness.faithfulness_correlation(b, ctx, nr_runs, subset_size)


@metric(ATTR_METRICS, higher_is_better=True, version="1",
        definition="Quantus FaithfulnessEstimate: Pearson(attr sum of each 28-px group, logit drop when it is set to 0)")
def q_faithfulness_estimate(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP) -> torch.Tensor:
    """Faithfulness estimate (Alvarez-Melis & Jaakkola 2018, https://arxiv.org/abs/1806.07538).

    Quantus: features_in_step=28 (28 groups, most important first, each removed alone),
    perturb_baseline=0.0, Pearson, abs=False, per-sample normalise, logits. Returns (N,) in [-1, 1].
    """
    return quantus_faithfulness.faithfulness_estimate(b, ctx, features_in_step)


@metric(ATTR_METRICS, higher_is_better=True, version="1", board=False,
        definition="Quantus MonotonicityCorrelation: Spearman(|attr| of 28-px groups, variance of p when set to U(0,1)). "
                   "Off the boards: U(0,1) adds ink to the background, where every black-baseline map is 0 by construction")
def q_monotonicity_correlation(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP,
                               nr_samples: Annotated[int, Range("[1, 100000]")] = 10) -> torch.Tensor:
    """Monotonicity correlation (Nguyen & Martinez 2020, https://arxiv.org/abs/2007.07584).

    Quantus: features_in_step=28, nr_samples=10 (Quantus 100) uniform draws per group,
    perturb_baseline="uniform" (one U(0,1) value per image and draw), abs=True, eps=1e-5,
    per-sample normalise, probabilities (softmax=True). Returns (N,) in [-1, 1].
    """
    return quantus_faithfulness.monotonicity_correlation(b, ctx, features_in_step, nr_samples)


@metric(ATTR_METRICS, higher_is_better=False, version="1", board=False,
        definition="Quantus PixelFlipping, 28 px/step to 0, p(explained); np.trapz of the 28-point curve / 27, in [0,1]. "
                   "Off the boards: deletion_auc's curve without its first point (Kendall tau 0.992)")
def q_pixel_flipping(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP,
                     baseline: Annotated[float, Range("[0, 1]")] = 0.0) -> torch.Tensor:
    """Pixel flipping (Bach et al. 2015, https://doi.org/10.1371/journal.pone.0130140), normalised.

    Quantus: features_in_step=28, perturb_baseline=0.0 (Quantus "black" is the per-sample
    min, 0 on MNIST), abs=False, normalise=False (order only), softmax=True. Quantus' AUC is
    an unnormalised np.trapz; here np.trapz(curve) / (len(curve) - 1), the mean height, in
    [0, 1]. It equals deletion_auc's curve without its first (unperturbed) point.
    """
    return quantus_faithfulness.pixel_flipping(b, ctx, features_in_step, baseline)


@metric(ATTR_METRICS, control=INPUT_INDEPENDENT, needs=("explain_fn",), higher_is_better=False, version="2",
        definition="Quantus MaxSensitivity: max over 10 noisy x' (U(-0.2,0.2) on the digit, clipped to [0,1]) "
                   "of ||a(x')-a(x)|| / ||a(x)||")
def q_max_sensitivity(b: AttrBatch, ctx: MetricContext, nr_samples: Annotated[int, Range("[1, 100000]")] = 10,
                      lower_bound: Annotated[float, Range("(0, 1]")] = 0.2) -> torch.Tensor:
    """Max-sensitivity (Yeh et al. 2019, https://arxiv.org/abs/1901.09392); re-explains via b.explain_fn.

    Quantus (the reference, metrics.quantus_robustness.quantus_init): nr_samples=10 (Quantus
    200), noise U(-0.2, 0.2) (Quantus' bound) on the foreground pixels only, clipped to [0, 1],
    Frobenius norms, abs=False, normalise=False, return_nan_when_prediction_changes=False.
    Computed from the noisy re-explanations it shares with q_avg_sensitivity and
    q_local_lipschitz_estimate (equal to Quantus' own, tested). Returns (N,) >= 0.
    """
    return max_sensitivity(b, ctx, nr_samples, lower_bound)


@metric(ATTR_METRICS, control=INPUT_INDEPENDENT, needs=("explain_fn",), higher_is_better=False, version="2",
        definition="Quantus AvgSensitivity: mean over 10 noisy x' (U(-0.2,0.2) on the digit, clipped to [0,1]) "
                   "of ||a(x')-a(x)|| / ||a(x)||")
def q_avg_sensitivity(b: AttrBatch, ctx: MetricContext, nr_samples: Annotated[int, Range("[1, 100000]")] = 10,
                      lower_bound: Annotated[float, Range("(0, 1]")] = 0.2) -> torch.Tensor:
    """Avg-sensitivity (Yeh et al. 2019, https://arxiv.org/abs/1901.09392); the same samples as max."""
    return avg_sensitivity(b, ctx, nr_samples, lower_bound)


@metric(ATTR_METRICS, control=INPUT_INDEPENDENT, needs=("explain_fn",), higher_is_better=False, version="2",
        definition="Quantus LocalLipschitzEstimate: max over 10 noisy x' (U(-0.2,0.2) on the digit, clipped "
                   "to [0,1]) of ||a(x)-a(x')|| / ||x-x'||, maps normalised by their max |a|")
def q_local_lipschitz_estimate(b: AttrBatch, ctx: MetricContext, nr_samples: Annotated[int, Range("[1, 100000]")] = 10,
                               lower_bound: Annotated[float, Range("(0, 1]")] = 0.2) -> torch.Tensor:
    """Local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018, https://arxiv.org/abs/1806.08049).

    Quantus (reference: quantus_robustness.quantus_init): nr_samples=10 (Quantus 200), the
    sensitivity metrics' neighbourhood (Quantus' default is N(0, 0.1) on every pixel; one
    neighbourhood lets the three metrics share their re-explanations), Euclidean distances,
    abs=False, per-sample normalise (maps and re-explanations), logits,
    return_nan_when_prediction_changes=False. Returns (N,) >= 0.
    """
    return local_lipschitz(b, ctx, nr_samples, lower_bound)


@metric(ATTR_METRICS, needs=("explain_fn",), higher_is_better=False, version="1", board=False,
        definition="Quantus RelativeOutputStability: max over 10 U(-0.05,0.05) noisy x' of "
                   "||(a-a')/a|| / ||logits-logits'||; NaN if any x' changes the prediction. Off the boards: "
                   "(a-a')/a divides by the maps' exact zeros")
def q_relative_output_stability(b: AttrBatch, ctx: MetricContext, nr_samples: Annotated[int, Range("[1, 100000]")] = 10,
                                noise: Annotated[float, Range("(0, 10]")] = 0.05) -> torch.Tensor:
    """Relative output stability (Agarwal et al. 2022, https://arxiv.org/abs/2203.06877).

    Quantus: nr_samples=10 (Quantus 200), uniform noise U(-0.05, 0.05) on every pixel
    (Quantus' default draws U(0.02, 0.2), a one-sided shift), abs=False, normalise=False,
    eps_min=1e-6, logits; return_nan_when_prediction_changes=True (the paper's neighbourhood
    keeps the prediction) and Quantus takes np.max, so one flipped x' makes the row NaN:
    errors sit near the boundary, and with U(-0.2, 0.2) 50 of 80 rows were NaN (0.05: 15).
    (a - a') / a makes the score heavy-tailed (1e5..1e6 for saliency). Returns (N,) >= 0.
    """
    init = dict(nr_samples=nr_samples, abs=False, normalise=False, eps_min=1e-6,
                perturb_func_kwargs=dict(lower_bound=noise, upper_bound=None),
                return_nan_when_prediction_changes=True)
    return _q("RelativeOutputStability", b, ctx, init, softmax=False, explain=True)


@metric(ATTR_METRICS, control=HISTOGRAM_ONLY, higher_is_better=True, version="1",
        definition="Quantus Sparseness: Gini index of |attr| (1 = all mass on one pixel)")
def q_sparseness(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Sparseness (Chalasani et al. 2020, https://arxiv.org/abs/1810.06583): abs=True, per-sample normalise."""
    return _q("Sparseness", b, ctx, dict(abs=True, **NORM), softmax=False)


@metric(ATTR_METRICS, control=HISTOGRAM_ONLY, higher_is_better=False, version="1",
        definition="Quantus Complexity: entropy of |attr| / sum |attr| (NaN for an all-zero map)")
def q_complexity(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Complexity (Bhatt et al. 2020, https://arxiv.org/abs/2005.00631): abs=True, per-sample normalise."""
    return _q("Complexity", b, ctx, dict(abs=True, **NORM), softmax=False)


@metric(ATTR_METRICS, needs=("explain_fn",), higher_is_better=False, version="1",
        definition="Quantus RandomLogit: 2-D SSIM between the map and the map for a random other class")
def q_random_logit(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Random logit test (Sixt et al. 2020, https://arxiv.org/abs/1912.09818); re-explains via b.explain_fn.

    Quantus: num_classes from the model, seed=ctx.seed, similarity = SSIM on the 28x28 maps
    (Quantus' default runs SSIM on the flattened rows), abs=False, per-sample normalise.
    Returns (N,) in [-1, 1].
    """
    return quantus_randomisation.random_logit(b, ctx)


@metric(ATTR_METRICS, needs=("explain_fn",), higher_is_better=False, version="3",
        definition="Quantus MPRT, cascading top-down: mean over randomised layers of the Spearman "
                   "correlation of |attr| with the randomised model's, on foreground pixels (x > 0); "
                   "0 where exactly one of the two maps is constant there")
def q_mprt(b: AttrBatch, ctx: MetricContext, layer_order: str = "top_down", foreground: bool = True,
           reduce: str = "mean", explain_model_fn=None) -> torch.Tensor:
    """Model parameter randomisation test (Adebayo et al. 2018, https://arxiv.org/abs/1810.03292).

    Quantus MPRT: layer_order="top_down" (cascading), seed=ctx.seed, abs=True, per-sample
    normalise, similarity = Spearman on the foreground pixels x > 0 only: on MNIST ~81% of
    pixels are 0 and a black-baseline method (IG, x*grad) gives exact zeros there in every
    model, so a whole-image rank correlation stays ~0.99 whatever the weights. The score is
    the mean over the randomised layers ("original" excluded; Quantus' own
    return_average_correlation skips a key "orig" and so averages it in), or the fully
    randomised model's value with reduce="last". Lower = the explanation depends more on the
    learned weights = better. Version 3: where exactly one of the two maps is constant on the
    foreground (LIME's and contrast CAM's maps on a randomised model are often all zero) the
    layer scores 0, not Quantus' NaN (a map that lost all structure shares no ranking with the
    original; both constant: NaN). NaN rows on all 91 errors: lime 79 -> 0, contrast_cam 56 -> 1,
    gradcam 11 -> 0. Computed by metrics.quantus_randomisation (one re-explanation per layer for
    the whole batch; equal to Quantus with constant="nan", tested). Returns (N,) in [-1, 1].
    """
    return quantus_randomisation.mprt(b, ctx, layer_order, foreground, reduce, explain_model_fn)
