"""Contour patch: does the region an attribution outlines, alone, keep the model's decision?

From the IG-baselines thesis (a patch test in the spirit of the preservation game of
Fong & Vedaldi 2017, https://arxiv.org/abs/1704.03296, and RISE's insertion,
https://arxiv.org/abs/1806.07421). Pinned definition: take the top 10% of pixels by
attribution (summed over channels, stable ties, and only pixels with positive attribution:
zero or negative attribution is no evidence), clean the mask with a morphological opening
(disk radius 1), grow it with a dilation (disk radius 1), take its convex hull
(scikit-image), keep x inside the hull and zeros elsewhere, and score 1.0 if the model
still predicts the explained class, else 0.0. An empty hull (nothing survives the
opening) scores 0.0: the explanation outlined no contiguous evidence.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS
from metrics.deletion_insertion import pixel_rank


def contour_masks(attr: torch.Tensor, top: float = 0.1, open_radius: int = 1,
                  dilate_radius: int = 1) -> torch.Tensor:
    """The convex-hull patch of each attribution map.

    Args:
        attr: (N,C,H,W) attributions.
        top: fraction of pixels kept before the morphology (rounded, at least 1).
        open_radius, dilate_radius: radii of the disk footprints (0 skips the step).
    Returns:
        bool (N,H,W) on the cpu.
    """
    from skimage.morphology import binary_dilation, binary_opening, convex_hull_image, disk

    s = attr.detach().double().sum(1).cpu()
    n, h, w = s.shape
    k = max(1, int(round(top * h * w)))
    mask = ((pixel_rank(attr.detach().cpu()).view(n, h, w) < k) & (s > 0)).numpy()
    # A (1, r, r) footprint applies the 2-D operation to each image of the stack at once.
    if open_radius > 0:
        mask = binary_opening(mask, disk(open_radius)[None])
    if dilate_radius > 0:
        mask = binary_dilation(mask, disk(dilate_radius)[None])
    hull = np.stack([convex_hull_image(m) if m.any() else m for m in mask]) if n else mask
    return torch.from_numpy(np.ascontiguousarray(hull, dtype=bool))


@metric(ATTR_METRICS, higher_is_better=True, version="1", kind="proportion",
        definition="1 if the model still predicts the explained class on x kept only inside the convex "
                   "hull of the opened+dilated top-10% attribution mask (zeros elsewhere)")
def contour_patch(b: AttrBatch, ctx: MetricContext, top: Annotated[float, Range("(0, 1]")] = 0.1,
                  open_radius: Annotated[int, Range("[0, 28]")] = 1,
                  dilate_radius: Annotated[int, Range("[0, 28]")] = 1) -> torch.Tensor:
    """Contour-patch preservation (IG-baselines thesis; cf. https://arxiv.org/abs/1704.03296).

    Args:
        top: fraction of pixels in the initial mask (default 0.1).
        open_radius: disk radius of the opening that removes specks (default 1).
        dilate_radius: disk radius of the dilation that grows the kept region (default 1).
    Returns:
        float64 (N,) of 0/1; higher is better. All patches go through the model in one call.
    """
    hull = contour_masks(b.attr, top, open_radius, dilate_radius)
    patch = b.x * hull[:, None].to(b.x.device, b.x.dtype)
    pred = ctx.oracle.predict(patch).cpu()
    kept = (pred == b.explained.cpu()) & hull.flatten(1).any(1)
    return kept.double()
