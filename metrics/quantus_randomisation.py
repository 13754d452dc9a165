"""Fast Quantus 0.6 MPRT and RandomLogit, held equal to Quantus (metrics.quantus_metrics is the reference).

Plain functions (registered elsewhere), same signature as the house metrics (b, ctx, **params):

    mprt_layers(b, ctx, ...) -> {"original": (N,), "<layer>": (N,), ...}   float64
    mprt(b, ctx, ...)        -> (N,) float64, mean (or last) over the randomised layers
    random_logit(b, ctx)     -> (N,) float64

What Quantus 0.6 does, and what is reproduced here (quantus/metrics/randomisation/mprt.py,
random_logit.py, metrics/base.py explain_batch, helpers/model/pytorch_model.py):

MPRT. `get_random_layer_generator` deep-copies the model, takes its modules that have
`reset_parameters` in `named_modules()` order (reversed for "top_down"), and for each one
calls `torch.manual_seed(seed + 1)` then `module.reset_parameters()` on the copy (cumulative
for "top_down"/"bottom_up"; "independent" reloads the trained weights first) and yields it.
While the first layer's copy is out, the trained model is re-explained ("original"). Every
re-explanation goes through `explain_batch`: explain_func -> per-sample normalise -> abs. The
stored attributions get the same normalise -> abs. Similarity is bench's foreground Spearman
(`_quantus_impl.foreground_spearman`: scipy.stats.spearmanr on the pixels x > 0, NaN with
fewer than 3 such pixels or a constant map). bench's reference runs Quantus once per chunk of
128 rows; each chunk restarts the generator, so every chunk sees the same randomised weights
(seed + 1 per layer) and one randomised copy per layer serves all rows here. The randomised
copy's weights are loaded into ctx.oracle.unwrap() for the explain_fn call (as
`_quantus_impl.quantus_explain_func` does) and the trained weights are restored after, in a
finally; with `explain_model_fn` the copy itself is passed and the model is not touched.

RandomLogit. Per Quantus call (one per 128-row chunk in the reference), `evaluate_batch`
re-seeds numpy's global RNG with `seed`, draws `randint(0, C - 1, rows)` and takes that index
among the classes other than the explained one (index i -> class i + (i >= y)); the map for
that class (normalised per sample, no abs) is compared with the stored map (normalised) by
bench's 2-D SSIM (`_quantus_impl.ssim_2d`: skimage structural_similarity, 7x7 uniform
window, data_range = max - min over both maps, NaN where that range is 0). The per-chunk
draws are replicated; the maps for all rows come from one explain_fn call.

Speed. Quantus makes one explain call per layer per 128-row chunk (plus one for "original")
and a scipy/skimage call per row; here it is one explain call per layer for the whole batch
(`explain_rows` caps the rows per call for methods that need it; a method whose maps depend
on the batch's composition, e.g. deepshap, matches the reference above 128 rows only with
explain_rows=128), `mprt` skips the "original" call it does not score, and the similarities
are vectorised: Spearman with average ranks (as scipy's rankdata) on the foreground of all
rows at once, SSIM with one uniform filter over the stack. In float64 the rank arithmetic is
exact (half-integer ranks, sums below 2**53) and the last steps follow np.corrcoef's order,
so the Spearman values match scipy's bit for bit; SSIM runs in float32 like skimage on
float32 maps, the same operations in the same order. Measured ratios: benchmarks/
test_quantus_randomisation.py (MPRT 2.9x for saliency, 1.3x for ig on the 91 errors).

RNG. As `_quantus_impl.run_quantus`: numpy's and torch's global RNGs are seeded with ctx.seed
(np.random.seed, torch.manual_seed) and restored afterwards (the CUDA generators too, where
CUDA is initialised). A method that draws from the global RNGs sees the same states as in
the reference when N <= 128 (one chunk; for `mprt`, with original=True); above that the
reference restarts its draws per chunk and the single call here cannot, so such a method's
rows beyond the first chunk get other (still seeded) draws. Deterministic methods, and
methods that seed themselves (bench's LIME, KernelSHAP, SmoothGrad, the noisy IGs, ...),
give the reference's values for any N.

Where Quantus raises (its assert_attributions: a chunk's re-explanations all 0, all 1, all
one value or all negative), these functions score the rows instead (NaN or the constant rule).

Constant maps (`constant=`). A randomised model's map is often constant on the foreground:
LIME's Lasso on the fully randomised CNN kept no patch (all-zero maps, 9 of 10 errors), and
contrast CAM through its ReLU is often all zeros. Spearman with a constant is undefined and
Quantus gives NaN, which made q_mprt NaN on 10/10 LIME and 8/10 contrast_cam rows of the
published board. constant="zero" (the default) scores 0 when exactly one of the two maps is
constant on the foreground (a map that lost all structure shares no ranking with the
original) and NaN when both are; constant="nan" is Quantus' rule (the equality tests use
it). Measured on the default CNN's errors, mprt NaN rows (nan rule -> zero rule): first 20
errors, lime 20 -> 0, contrast_cam 16 -> 1; all 91 errors, lime 79 -> 0, contrast_cam 56 -> 1,
gradcam 11 -> 0. The row left is one whose contrast-CAM map is constant on the foreground
for the trained model already and again for the fully randomised one (both constant).
"""

from __future__ import annotations

import contextlib
import copy
import functools
from typing import Annotated

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from bench.contract.params import Range
from metrics._quantus_impl import normalise_per_sample
from metrics.similarity import CONSTANT_RULES, spearman_rows, ssim_rows

LAYER_ORDERS = ("top_down", "bottom_up", "independent")
QUANTUS_CHUNK = 128  # rows per Quantus call in the reference (run_quantus' batch_size)


# -- RNG and explanation plumbing --------------------------------------------------------------

@contextlib.contextmanager
def seeded_global_rngs(seed: int):
    """Seed numpy's and torch's global RNGs as run_quantus does; restore them (and CUDA's) after."""
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _explain(fn, x: torch.Tensor, t: torch.Tensor, rows: int | None) -> np.ndarray:
    """fn(x, t) -> attr for all rows (in pieces of `rows` when given), as float32 numpy (N, D)."""
    step = len(x) if not rows else max(1, int(rows))
    parts = [fn(x[lo:lo + step], t[lo:lo + step]).detach().float().cpu().numpy().reshape(len(x[lo:lo + step]), -1)
             for lo in range(0, len(x), step)]
    return np.concatenate(parts) if parts else np.zeros((0, x[0].numel() if len(x) else 0), np.float32)


def _prepare(a: np.ndarray, absolute: bool) -> np.ndarray:
    """Quantus' explain_batch postprocessing with bench's settings: per-sample normalise, then abs."""
    a = normalise_per_sample(np.asarray(a, dtype=np.float32).reshape(len(a), -1))
    return np.abs(a) if absolute else a


def _inputs(b: AttrBatch, device):
    x = b.x.detach().to(device, torch.float32)
    t = b.explained.detach().to(device, torch.long).view(-1)
    return x, t


# -- similarities, vectorised ------------------------------------------------------------------

def mprt_layers(b: AttrBatch, ctx: MetricContext, layer_order: str = "top_down", foreground: bool = True,
                explain_model_fn=None, constant: str = "zero",
                explain_rows: Annotated[int, Range("[0, 2**31)")] = 0, original: bool = True) -> dict[str, torch.Tensor]:
    """Quantus MPRT similarities per randomised layer: {"original": (N,), "<layer>": (N,), ...} float64.

    The keys and values of `metrics.quantus_metrics.mprt_layers` (with constant="nan"): "original"
    compares attr with a fresh explanation on the trained model, each later key adds one more
    randomised layer (cascading from the top with "top_down"). constant="zero" scores 0 where
    exactly one of the two maps is constant on the foreground (module docstring).

    Args:
        layer_order: "top_down" | "bottom_up" (cascading) | "independent" (one layer at a time).
        foreground: Spearman on the pixels x > 0 only (else on every pixel).
        explain_model_fn: optional (model, x, target) -> attr given the randomised copy itself;
            else b.explain_fn runs with the copy's weights loaded into ctx.oracle.unwrap().
        constant: "zero" or "nan" (Quantus).
        explain_rows: rows per explain call; 0 = all rows in one call.
        original: re-explain on the trained model for the "original" key; False drops the key
            and its explain call (what `mprt` needs). The randomised layers' values do not
            change, except for a method drawing from the global RNGs, whose later draws then
            start elsewhere than in Quantus (every built-in method seeds its own).
    """
    if layer_order not in LAYER_ORDERS:
        raise ValueError(f"layer_order must be one of {LAYER_ORDERS}, got {layer_order!r}")
    if constant not in CONSTANT_RULES:
        raise ValueError(f"constant must be one of {CONSTANT_RULES}, got {constant!r}")
    if explain_model_fn is None and b.explain_fn is None:
        raise ValueError("quantus MPRT re-explains inputs: AttrBatch.explain_fn is required")
    n = len(b.x)
    if n == 0:
        return {}
    base = ctx.oracle.unwrap()
    device = getattr(ctx.oracle, "device", "cpu")
    x, t = _inputs(b, device)
    flat = b.x.detach().cpu().numpy().reshape(n, -1)
    mask = flat > 0 if foreground else np.ones_like(flat, bool)
    a0 = _prepare(b.attr.detach().float().cpu().numpy(), True)

    def sim(a_new: np.ndarray) -> torch.Tensor:
        s = spearman_rows(a0, _prepare(a_new, True), mask, constant)
        s[~np.isfinite(s)] = np.nan
        return torch.from_numpy(s)

    out: dict[str, torch.Tensor] = {}
    saved = {k: v.detach().clone() for k, v in base.state_dict().items()}
    with seeded_global_rngs(ctx.seed):
        rand = copy.deepcopy(base)
        modules = [m for m in rand.named_modules() if hasattr(m[1], "reset_parameters")]
        if layer_order == "top_down":
            modules = modules[::-1]
        loaded = False
        try:
            for i, (name, module) in enumerate(modules):
                if layer_order == "independent":
                    rand.load_state_dict(saved)
                torch.manual_seed(ctx.seed + 1)
                module.reset_parameters()
                if i == 0 and original:  # the trained model, re-explained while the first copy is out (as Quantus)
                    fn = b.explain_fn if explain_model_fn is None else functools.partial(explain_model_fn, base)
                    out["original"] = sim(_explain(fn, x, t, explain_rows))
                if explain_model_fn is None:
                    loaded = True  # restore even if the load itself fails half-way
                    base.load_state_dict(rand.state_dict())
                    fn = b.explain_fn
                else:
                    fn = functools.partial(explain_model_fn, rand)
                out[name] = sim(_explain(fn, x, t, explain_rows))
        finally:
            if loaded:
                base.load_state_dict(saved)
    return out


def mprt(b: AttrBatch, ctx: MetricContext, layer_order: str = "top_down", foreground: bool = True,
         reduce: str = "mean", explain_model_fn=None, constant: str = "zero",
         explain_rows: Annotated[int, Range("[0, 2**31)")] = 0, original: bool = False) -> torch.Tensor:
    """Model parameter randomisation test (Adebayo et al. 2018, https://arxiv.org/abs/1810.03292), fast.

    q_mprt's definition (Quantus MPRT, cascading top-down, seed=ctx.seed, abs=True, per-sample
    normalise, Spearman on the foreground pixels x > 0; mean over the randomised layers,
    "original" excluded, or the fully randomised model's value with reduce="last"), with the
    constant-map rule: constant="zero" (default) scores a layer 0 where exactly one of the two
    maps is constant on the foreground and NaN where both are; constant="nan" is Quantus' NaN.
    Lower = the explanation depends more on the learned weights. Returns float64 (N,) in [-1, 1].

    The trained model is not re-explained (the "original" similarity is not part of the
    score): one explain call per randomised layer, one fewer than Quantus. original=True makes
    that call too, for a method that draws from the global RNGs to see Quantus' exact draws.
    """
    if reduce not in ("mean", "last"):
        raise ValueError(f"reduce must be 'mean' or 'last', got {reduce!r}")
    layers = mprt_layers(b, ctx, layer_order, foreground, explain_model_fn, constant, explain_rows, original)
    randomised = [v for k, v in layers.items() if k != "original"]
    if not randomised:
        return torch.full((len(b.x),), float("nan"), dtype=torch.float64)
    stacked = torch.stack(randomised, 1)
    return stacked[:, -1] if reduce == "last" else stacked.mean(1)


# -- RandomLogit ---------------------------------------------------------------------------------

def off_classes(y: np.ndarray, n_classes: int, seed: int, batch_size: int = QUANTUS_CHUNK) -> np.ndarray:
    """Quantus RandomLogit's random other class per row, drawn per `batch_size` chunk as the reference.

    Each chunk: np.random.seed(seed); i = np.random.randint(0, C - 1, rows); class i among the
    classes other than y, i.e. i + (i >= y). Leaves numpy's global RNG after the first chunk's draw.
    """
    y = np.asarray(y).reshape(-1)
    out = np.empty(len(y), dtype=np.int64)
    first = None
    for lo in range(0, len(y), batch_size):
        yy = y[lo:lo + batch_size]
        np.random.seed(seed)
        i = np.random.randint(0, n_classes - 1, len(yy))
        if first is None:
            first = np.random.get_state()
        out[lo:lo + batch_size] = i + (i >= yy)
    if first is not None:
        np.random.set_state(first)
    return out


def random_logit(b: AttrBatch, ctx: MetricContext,
                 explain_rows: Annotated[int, Range("[0, 2**31)")] = 0) -> torch.Tensor:
    """Random logit test (Sixt et al. 2020, https://arxiv.org/abs/1912.09818), fast; q_random_logit's values.

    Quantus RandomLogit: num_classes from the model, seed=ctx.seed (classes drawn per 128-row
    chunk as the reference), 2-D SSIM between the stored map and the map for the random other
    class, abs=False, per-sample normalise. One explain_fn call for all rows (`explain_rows`
    caps it). Returns float64 (N,) in [-1, 1]; NaN where the two maps together span no range
    (both one and the same constant, e.g. all zeros).
    """
    if b.explain_fn is None:
        raise ValueError("quantus RandomLogit re-explains inputs: AttrBatch.explain_fn is required")
    n = len(b.x)
    if n == 0:
        return torch.zeros(0, dtype=torch.float64)
    n_classes = ctx.oracle.n_classes or ctx.oracle.logits(b.x[:1]).shape[1]
    device = getattr(ctx.oracle, "device", "cpu")
    x, t = _inputs(b, device)
    a0 = _prepare(b.attr.detach().float().cpu().numpy(), False)
    with seeded_global_rngs(ctx.seed):
        y_off = off_classes(t.cpu().numpy(), n_classes, ctx.seed)
        a1 = _prepare(_explain(b.explain_fn, x, torch.as_tensor(y_off, device=device), explain_rows), False)
    s = ssim_rows(a0, a1, tuple(b.x.shape[1:]))
    s[~np.isfinite(s)] = np.nan
    return torch.from_numpy(s)
