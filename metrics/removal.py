"""Removal operators x orders: deletion curves MoRF and LeRF and their SRG difference, normalised by p0.

One score per (operator, order), so a faithfulness number says which removal produced it.
Operators (what a removed pixel becomes): "zeros" (MNIST's background: 80.7% of the errors'
pixels are already 0, so zeros rewards maps that point at ink), "blur" (RISE's canvas, kernel
11, sigma 5), "mean" (the image's own mean) and "road" (ROAD's noisy linear imputation from the
neighbours, noise 0.01, `metrics.road`; Rong et al. 2022, https://arxiv.org/abs/2202.00449).
Orders: MoRF removes the most relevant pixels first, LeRF the least relevant first (operators and
orders live in metrics.operators, shared with the leakage check, metrics.leakage).

Pinned definition: `step` = 28 pixels per step, 29 points on 28x28 (deletion_auc's grid); at
point k the k*28 first pixels of the order are removed; the curve is p(explained | x_k) /
p0 with p0 = p(explained | x) (the first point of every curve), so 1 means "as confident as
on the intact image" and models of different confidence compare; the score is the trapezoid
AUC of that curve, (sum - first/2 - last/2)/(n-1) (an operator that changes nothing gives 1).
`del_morf_<op>`: lower is better; `del_lerf_<op>`: higher is better; `srg_<op>` = LeRF area -
MoRF area (SRG, Bluecher et al., TMLR 2024, https://arxiv.org/abs/2401.06654): higher is better.

Inverse control: LeRF deletion is MoRF deletion of the method's own map reversed (-attr, for a
map without ties), so the LeRF column is the inverse control beside the random map's row.
Insertion: inserting the most relevant pixels first under an operator passes through exactly
the images of LeRF deletion under it, in reverse (the same removed set at every point when
`step` divides H*W), so its AUC equals del_lerf's and insertion LeRF's equals del_morf's; they
are not registered twice (`removal_curves(..., mode="insertion")` computes them; tested).
"""

from __future__ import annotations

from typing import Annotated, Callable

import torch

from bench.contract.metrics import AttrBatch, MetricContext, metric
from bench.contract.params import Range
from metrics import ATTR_METRICS
from metrics.deletion_insertion import MAX_ROWS, STEP, auc
from metrics.leakage import board_leakage
from metrics.operators import OPERATORS, Operator, order_rank, remove
from metrics.road import NOISE


def removal_curves(oracle, x: torch.Tensor, attr: torch.Tensor, explained: torch.Tensor, operator: Operator = "zeros",
                   order: str = "morf", mode: str = "deletion", step: int = STEP, noise: float = NOISE, seed: int = 0,
                   max_rows: int = MAX_ROWS) -> torch.Tensor:
    """p(explained) at every point of a removal curve, NOT normalised: float64 (N, n_steps + 1) on the cpu.

    Deletion: point k has the first k*step pixels of `order` removed (point 0 is x). Insertion:
    point k has them revealed and every other pixel removed (the last point is x).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    n, c, h, w = x.shape
    n_steps = (h * w + step - 1) // step
    rank = order_rank(attr, order).to(x.device)
    cut = torch.arange(n_steps + 1, device=x.device) * step
    gen = torch.Generator().manual_seed(int(seed))
    per_chunk = max(1, max_rows // (n_steps + 1))
    out = []
    for lo in range(0, n, per_chunk):
        hi = min(n, lo + per_chunk)
        removed = rank[lo:hi, None, :] < cut[None, :, None]  # (n, S, HW)
        if mode == "insertion":
            removed = ~removed
        xs = x[lo:hi, None].expand(-1, n_steps + 1, -1, -1, -1).reshape(-1, c, h, w)
        rows = remove(xs, removed.reshape(-1, h, w), operator, noise, gen)
        probs = oracle.probs(rows).view(hi - lo, n_steps + 1, -1)
        idx = explained[lo:hi].to(probs.device).view(-1, 1, 1).expand(-1, n_steps + 1, 1)
        out.append(probs.gather(2, idx).squeeze(2).double().cpu())
    return torch.cat(out) if out else torch.empty(0, n_steps + 1, dtype=torch.float64)


def p0_auc(curve: torch.Tensor, p0: torch.Tensor) -> torch.Tensor:
    """AUC of curve / p0 (p0 = p(explained | x), (N,)): 1 for a curve that stays at p0."""
    return auc(curve) / p0.double().clamp_min(torch.finfo(torch.float64).tiny)


def _area(b: AttrBatch, ctx: MetricContext, operator: str, order: str, step: int, noise: float,
          max_rows: int) -> torch.Tensor:
    """p0-normalised deletion AUC of a batch, computed once per setting (srg reuses both orders)."""
    cache = b.__dict__.setdefault("_removal_areas", {})
    key = (operator, order, step, noise, ctx.seed)
    if key not in cache:
        curve = removal_curves(ctx.oracle, b.x, b.attr, b.explained, operator, order, "deletion", step, noise,
                               ctx.seed, max_rows)
        cache[key] = p0_auc(curve, curve[:, 0])
    return cache[key]


_WHAT = {"morf": "most relevant pixels first", "lerf": "least relevant pixels first (= MoRF of the reversed "
         "map: the inverse control)", "srg": "LeRF area - MoRF area (SRG)"}
_OPS = {"zeros": "zeros", "blur": "RISE's blur (k11, sigma 5)", "mean": "the image's mean",
        "road": "ROAD noisy linear imputation (noise 0.01)"}


def _make(operator: str, which: str) -> Callable:
    """The registered metric `<del_morf|del_lerf|srg>_<operator>` (one function per column)."""

    def score(b: AttrBatch, ctx: MetricContext, step: Annotated[int, Range("[1, 784]")] = STEP,
              noise: Annotated[float, Range("[0, 1]")] = NOISE,
              max_rows: Annotated[int, Range("[1, 2**20]")] = MAX_ROWS) -> torch.Tensor:
        if which == "srg":
            return (_area(b, ctx, operator, "lerf", step, noise, max_rows)
                    - _area(b, ctx, operator, "morf", step, noise, max_rows))
        return _area(b, ctx, operator, which, step, noise, max_rows)

    name = f"srg_{operator}" if which == "srg" else f"del_{which}_{operator}"
    score.__name__ = score.__qualname__ = name
    score.__doc__ = (f"Deletion onto {_OPS[operator]}, {_WHAT[which]}, AUC of p(explained)/p0 (RISE,\n"
                     f"    https://arxiv.org/abs/1806.07421; ROAD, https://arxiv.org/abs/2202.00449; SRG,\n"
                     f"    https://arxiv.org/abs/2401.06654).\n\n"
                     f"    Args:\n        step: pixels removed per step (28: 29 points on 28x28).\n"
                     f"        noise: ROAD's noise SD (used by the road operator only).\n"
                     f"        max_rows: model rows per forward call.\n"
                     f"    Returns:\n        float64 (N,); {'lower' if which == 'morf' else 'higher'} is better.\n")
    hib = which != "morf"
    definition = (f"{'SRG: del_lerf - del_morf' if which == 'srg' else 'deletion ' + which.upper()} onto "
                  f"{_OPS[operator]}: AUC of p(explained)/p0, p0 = p(explained | x), 28 px/step"
                  + (", LeRF = MoRF of the reversed map (inverse control)" if which == "lerf" else ""))
    return metric(ATTR_METRICS, higher_is_better=hib, version="1", definition=definition, kind="mean",
                  provenance=_leakage_provenance)(score)


def _leakage_provenance(ctx: MetricContext) -> dict:
    """The board's leakage table (metrics.leakage.board_leakage), built once per run for all removal columns."""
    if ctx.data is None or ctx.oracle is None:
        return {}
    return {"removal_leakage": ctx.once("removal_leakage", lambda: board_leakage(ctx))}


for _op in OPERATORS:
    for _which in ("morf", "lerf", "srg"):
        _fn = _make(_op, _which)
        globals()[_fn.__name__] = _fn
del _op, _which, _fn
