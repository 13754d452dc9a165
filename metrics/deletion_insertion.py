"""Deletion and insertion AUC (RISE causal metrics), batched over images and steps.

Petsiuk, Das & Saenko 2018, https://arxiv.org/abs/1806.07421 (eclique/RISE `evaluation.py`).
Pinned definition: pixels are ordered most-important-first by `attr` summed over channels
(ties: lower flat pixel index first, a stable sort; RISE flips an ascending argsort instead);
`step` pixels (all channels) move per iteration, so a 28x28 image with step 28 gives 28 steps
and 29 points, the same 1/28 of the image per step as RISE's 224*8 on 224x224. At every
point the curve is the softmax probability of the explained class. Deletion moves pixels
from x onto a substrate (default zeros: MNIST's background), insertion from a canvas
(default RISE's blur: kernel 11, sigma 5, zero padding) onto x. AUC = (sum - first/2 -
last/2) / (n - 1), a trapezoid over [0, 1], so it lies in [0, 1].
"""

from __future__ import annotations

from typing import Annotated, Callable, Union

import numpy as np
import torch
import torch.nn.functional as F

from bench.contract.metrics import AttrBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS

Substrate = Union[str, float, Callable[[torch.Tensor], torch.Tensor]]

STEP = 28
MAX_ROWS = 8192  # model rows per chunk of images (all their steps together)


def auc(curve: torch.Tensor) -> torch.Tensor:
    """RISE's normalised trapezoid of each row of a curve.

    Args:
        curve: (N, n) values at n equally spaced points, n >= 2.
    Returns:
        float64 (N,): (sum - first/2 - last/2) / (n - 1).
    """
    c = curve.double()
    return (c.sum(1) - c[:, 0] / 2 - c[:, -1] / 2) / (c.shape[1] - 1)


def gaussian_kernel(klen: int = 11, nsig: float = 5.0) -> torch.Tensor:
    """RISE's `gkern`: a Dirac delta smoothed by scipy's gaussian_filter (klen x klen, float32)."""
    from scipy.ndimage import gaussian_filter

    inp = np.zeros((klen, klen))
    inp[klen // 2, klen // 2] = 1
    return torch.from_numpy(gaussian_filter(inp, nsig).astype("float32"))


def blur(x: torch.Tensor, klen: int = 11, nsig: float = 5.0) -> torch.Tensor:
    """RISE's insertion canvas: per-channel convolution with `gaussian_kernel`, zero padding."""
    c = x.shape[1]
    k = gaussian_kernel(klen, nsig).to(x.device, x.dtype).expand(c, 1, klen, klen)
    return F.conv2d(x, k, padding=klen // 2, groups=c)


def make_substrate(x: torch.Tensor, substrate: Substrate) -> torch.Tensor:
    """The image a substrate names: "zeros", "blur", "mean" (per-image mean), a constant, or x -> tensor."""
    if callable(substrate):
        return substrate(x).to(x.dtype)
    if isinstance(substrate, (int, float)):
        return torch.full_like(x, float(substrate))
    if substrate == "zeros":
        return torch.zeros_like(x)
    if substrate == "blur":
        return blur(x)
    if substrate == "mean":
        return x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x).clone()
    raise ValueError(f"unknown substrate {substrate!r}: use 'zeros', 'blur', 'mean', a float or a callable")


def pixel_rank(attr: torch.Tensor) -> torch.Tensor:
    """Rank of each pixel, 0 = most important (attr summed over channels; stable ties).

    Args:
        attr: (N,C,H,W).
    Returns:
        int64 (N, H*W).
    """
    s = attr.detach().sum(1).flatten(1).double()
    order = torch.sort(s, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order).contiguous())
    return rank


def causal_curves(oracle, start: torch.Tensor, finish: torch.Tensor, attr: torch.Tensor,
                  explained: torch.Tensor, step: int = STEP, max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Probability of `explained` as pixels move from `start` to `finish`, most important first.

    Args:
        oracle: anything with `probs(x)`; all steps of a chunk of images go in one call.
        start, finish: (N,C,H,W) the image at point 0 and after the last step.
        attr: (N,C,H,W) importance; explained: int64 (N,).
        step: pixels moved per step; n_steps = ceil(H*W / step).
        max_rows: rows per oracle call (images are chunked, never split across calls).
    Returns:
        float64 (N, n_steps + 1) on the cpu.
    """
    n, c, h, w = start.shape
    hw = h * w
    n_steps = (hw + step - 1) // step
    rank = pixel_rank(attr).to(start.device)
    moved_before = torch.arange(n_steps + 1, device=start.device) * step  # point i: rank < i*step moved
    per_chunk = max(1, max_rows // (n_steps + 1))
    out = []
    for lo in range(0, n, per_chunk):
        hi = min(n, lo + per_chunk)
        mask = rank[lo:hi, None, None, :] < moved_before[None, :, None, None]  # (n, S, 1, HW)
        rows = torch.where(mask, finish[lo:hi, None].flatten(3), start[lo:hi, None].flatten(3))
        probs = oracle.probs(rows.reshape(-1, c, h, w)).view(hi - lo, n_steps + 1, -1)
        idx = explained[lo:hi].to(probs.device).view(-1, 1, 1).expand(-1, n_steps + 1, 1)
        out.append(probs.gather(2, idx).squeeze(2).double().cpu())
    return torch.cat(out) if out else torch.empty(0, n_steps + 1, dtype=torch.float64)


def deletion_curves(oracle, x, attr, explained, step: int = STEP, substrate: Substrate = "zeros",
                    max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Deletion curves (N, n_steps + 1): x with its most important pixels replaced by the substrate."""
    return causal_curves(oracle, x, make_substrate(x, substrate), attr, explained, step, max_rows)


def insertion_curves(oracle, x, attr, explained, step: int = STEP, canvas: Substrate = "blur",
                     max_rows: int = MAX_ROWS) -> torch.Tensor:
    """Insertion curves (N, n_steps + 1): the canvas with x's most important pixels revealed."""
    return causal_curves(oracle, make_substrate(x, canvas), x, attr, explained, step, max_rows)


@metric(ATTR_METRICS, higher_is_better=False, version="1",
        definition="RISE deletion AUC: p(explained) as most-important pixels go to zeros, "
                   "28 px/step, (sum - first/2 - last/2)/(n-1)")
def deletion_auc(b: AttrBatch, ctx: MetricContext, step: Annotated[int, Range("[1, 784]")] = STEP,
                 substrate: Annotated[Substrate, Range("[0, 1]")] = "zeros",
                 max_rows: Annotated[int, Range("[1, 2**20]")] = MAX_ROWS) -> torch.Tensor:
    """Deletion AUC (Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421): a quick drop is good.

    Args:
        step: pixels deleted per step (28 -> 28 steps, 29 points on 28x28).
        substrate: what deleted pixels become ("zeros" default, "blur", "mean", float, callable).
        max_rows: model rows per forward call.
    Returns:
        float64 (N,) in [0, 1]; lower is better.
    """
    return auc(deletion_curves(ctx.oracle, b.x, b.attr, b.explained, step, substrate, max_rows))


@metric(ATTR_METRICS, higher_is_better=True, version="1",
        definition="RISE insertion AUC: p(explained) as most-important pixels are revealed on a "
                   "blurred canvas (k11, sigma 5), 28 px/step, (sum - first/2 - last/2)/(n-1)")
def insertion_auc(b: AttrBatch, ctx: MetricContext, step: Annotated[int, Range("[1, 784]")] = STEP,
                  canvas: Annotated[Substrate, Range("[0, 1]")] = "blur",
                  max_rows: Annotated[int, Range("[1, 2**20]")] = MAX_ROWS) -> torch.Tensor:
    """Insertion AUC (Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421): a quick rise is good.

    Args:
        step: pixels revealed per step (28 -> 28 steps, 29 points on 28x28).
        canvas: the starting image ("blur" default as RISE, "zeros", "mean", float, callable).
        max_rows: model rows per forward call.
    Returns:
        float64 (N,) in [0, 1]; higher is better.
    """
    return auc(insertion_curves(ctx.oracle, b.x, b.attr, b.explained, step, canvas, max_rows))
