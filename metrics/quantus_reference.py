"""The reference: Quantus 0.6 itself, run in bench's configuration of each metric it has a fast path for.

The boards score these metrics through bench's batched paths (metrics.quantus_faithfulness,
metrics.quantus_robustness, metrics.quantus_randomisation; registered in metrics.quantus_metrics);
every function here runs Quantus on the same inputs with the same parameters and seeds, and the
tests hold each fast path equal to it (tests/test_quantus_*.py). Nothing here is registered.
Hedström et al. 2023, https://jmlr.org/papers/v24/22-0142.html.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from bench.contract.params import Range
from metrics._quantus_impl import (
    NORM,
    as_scores,
    foreground_spearman,
    quantus_explain_func,
    run_quantus,
    ssim_2d,
)
from metrics.quantus_robustness import quantus_init

STEP = 28  # pixels per step on 28x28: 28 steps, as deletion_auc


def _q(name, b, ctx, init, softmax, explain=False, batch_size=128):
    """Run one Quantus metric on b and return its float64 (N,) scores."""
    return as_scores(run_quantus(name, b, ctx, init, softmax=softmax, explain=explain, batch_size=batch_size))


def faithfulness_correlation(b: AttrBatch, ctx: MetricContext, nr_runs: Annotated[int, Range("[1, 100000]")] = 100,
                               subset_size: Annotated[int, Range("[1, 784]")] = 112) -> torch.Tensor:
    """Faithfulness correlation (Bhatt et al. 2020, https://arxiv.org/abs/2005.00631).

    Quantus: nr_runs=100, subset_size=112 (1/7 of 784; Quantus' 224 is sized for 224x224),
    perturb_baseline=0.0 (= Quantus "black", the per-sample min, on MNIST), Pearson,
    abs=False, per-sample max normalise, logits (softmax=False). Returns (N,) in [-1, 1].
    """
    init = dict(nr_runs=nr_runs, subset_size=subset_size, perturb_baseline=0.0, abs=False, **NORM)
    return _q("FaithfulnessCorrelation", b, ctx, init, softmax=False)


def faithfulness_estimate(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP) -> torch.Tensor:
    """Faithfulness estimate (Alvarez-Melis & Jaakkola 2018, https://arxiv.org/abs/1806.07538).

    Quantus: features_in_step=28 (28 groups, most important first, each removed alone),
    perturb_baseline=0.0, Pearson, abs=False, per-sample normalise, logits. Returns (N,) in [-1, 1].
    """
    init = dict(features_in_step=features_in_step, perturb_baseline=0.0, abs=False, **NORM)
    return _q("FaithfulnessEstimate", b, ctx, init, softmax=False)


def monotonicity_correlation(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP,
                               nr_samples: Annotated[int, Range("[1, 100000]")] = 10) -> torch.Tensor:
    """Monotonicity correlation (Nguyen & Martinez 2020, https://arxiv.org/abs/2007.07584).

    Quantus: features_in_step=28, nr_samples=10 (Quantus 100) uniform draws per group,
    perturb_baseline="uniform" (one U(0,1) value per image and draw), abs=True, eps=1e-5,
    per-sample normalise, probabilities (softmax=True). Returns (N,) in [-1, 1].
    """
    init = dict(features_in_step=features_in_step, nr_samples=nr_samples, perturb_baseline="uniform",
                abs=True, eps=1e-5, **NORM)
    return _q("MonotonicityCorrelation", b, ctx, init, softmax=True)


def pixel_flipping_curves(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP,
                          baseline: Annotated[float, Range("[0, 1]")] = 0.0) -> torch.Tensor:
    """Quantus PixelFlipping curves, float64 (N, 784/step): p(explained) after each flip step.

    The curve starts after the first step (no unperturbed point, unlike RISE's deletion).
    """
    init = dict(features_in_step=features_in_step, perturb_baseline=baseline, abs=False, normalise=False)
    outs = run_quantus("PixelFlipping", b, ctx, init, softmax=True)
    return torch.from_numpy(np.concatenate([np.asarray(o, dtype=np.float64) for o in outs]))


def pixel_flipping(b: AttrBatch, ctx: MetricContext, features_in_step: Annotated[int, Range("[1, 784]")] = STEP,
                     baseline: Annotated[float, Range("[0, 1]")] = 0.0) -> torch.Tensor:
    """Pixel flipping (Bach et al. 2015, https://doi.org/10.1371/journal.pone.0130140), normalised.

    Quantus: features_in_step=28, perturb_baseline=0.0 (Quantus "black" is the per-sample
    min, 0 on MNIST), abs=False, normalise=False (order only), softmax=True. Quantus' AUC is
    an unnormalised np.trapz; here np.trapz(curve) / (len(curve) - 1), the mean height, in
    [0, 1]. It equals deletion_auc's curve without its first (unperturbed) point.
    """
    c = pixel_flipping_curves(b, ctx, features_in_step, baseline)
    return torch.from_numpy(np.trapz(c.numpy(), axis=1) / max(1, c.shape[1] - 1))


def random_logit(b: AttrBatch, ctx: MetricContext) -> torch.Tensor:
    """Random logit test (Sixt et al. 2020, https://arxiv.org/abs/1912.09818); re-explains via b.explain_fn.

    Quantus: num_classes from the model, seed=ctx.seed, similarity = SSIM on the 28x28 maps
    (Quantus' default runs SSIM on the flattened rows), abs=False, per-sample normalise.
    Returns (N,) in [-1, 1].
    """
    n_classes = ctx.oracle.n_classes or ctx.oracle.logits(b.x[:1]).shape[1]
    init = dict(num_classes=n_classes, seed=ctx.seed, similarity_func=ssim_2d(tuple(b.x.shape[1:])),
                abs=False, **NORM)
    return _q("RandomLogit", b, ctx, init, softmax=False, explain=True)


def mprt_layers(b: AttrBatch, ctx: MetricContext, layer_order: str = "top_down", foreground: bool = True,
                explain_model_fn=None, batch_size: Annotated[int, Range("[1, 65536]")] = 128) -> dict[str, torch.Tensor]:
    """Quantus MPRT similarities per randomised layer: {"original": (N,), "<layer>": (N,), ...}.

    "original" compares attr with a fresh explanation on the trained model (about 1 for a
    deterministic method); each later key adds one more randomised layer (cascading from
    the top with "top_down"). Re-explanations on a randomised copy use `explain_model_fn(model,
    x, target)` when given, else b.explain_fn with the copy's weights loaded for the call into
    ctx.oracle.unwrap() (which must be the module explain_fn's method uses) and restored after.
    """
    base = ctx.oracle.unwrap()
    device = getattr(ctx.oracle, "device", "cpu")
    flat = b.x.detach().cpu().numpy().reshape(len(b.x), -1)

    def call(m, args, rows):
        m.similarity_func = foreground_spearman(flat[rows] > 0 if foreground else np.ones_like(flat[rows], bool))
        args["explain_func"] = quantus_explain_func(b.explain_fn, device, explain_model_fn, base)
        return m(**args)

    init = dict(layer_order=layer_order, seed=ctx.seed, abs=True, **NORM)
    outs = run_quantus("MPRT", b, ctx, init, softmax=False, explain=explain_model_fn is None,
                       batch_size=batch_size, call=call)
    return {k: as_scores([o[k] for o in outs]) for k in (outs[0] if outs else {})}


def mprt(b: AttrBatch, ctx: MetricContext, layer_order: str = "top_down", foreground: bool = True,
         reduce: str = "mean", explain_model_fn=None) -> torch.Tensor:
    """Quantus MPRT reduced as q_mprt reduces it (mean over the randomised layers, or "last"), NaN rule."""
    layers = mprt_layers(b, ctx, layer_order, foreground, explain_model_fn)
    randomised = torch.stack([v for k, v in layers.items() if k != "original"], 1)
    if reduce == "last":
        return randomised[:, -1]
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'last', got {reduce!r}")
    return randomised.mean(1)


def _robustness(name: str, b: AttrBatch, ctx: MetricContext, nr_samples: int, lower_bound: float) -> torch.Tensor:
    return _q(name, b, ctx, quantus_init(name, nr_samples, lower_bound), softmax=False, explain=True)


def max_sensitivity(b: AttrBatch, ctx: MetricContext, nr_samples: int = 10, lower_bound: float = 0.2) -> torch.Tensor:
    """Quantus MaxSensitivity in q_max_sensitivity's configuration (quantus_robustness.quantus_init)."""
    return _robustness("MaxSensitivity", b, ctx, nr_samples, lower_bound)


def avg_sensitivity(b: AttrBatch, ctx: MetricContext, nr_samples: int = 10, lower_bound: float = 0.2) -> torch.Tensor:
    """Quantus AvgSensitivity in q_avg_sensitivity's configuration."""
    return _robustness("AvgSensitivity", b, ctx, nr_samples, lower_bound)


def local_lipschitz(b: AttrBatch, ctx: MetricContext, nr_samples: int = 10, lower_bound: float = 0.2) -> torch.Tensor:
    """Quantus LocalLipschitzEstimate in q_local_lipschitz_estimate's configuration."""
    return _robustness("LocalLipschitzEstimate", b, ctx, nr_samples, lower_bound)
