"""Cost in one unit: model queries in forward-pass equivalents, a gradient query priced by measurement.

cost = queries + ratio * grad_queries, where ratio = (time of a forward + backward pass - time of
a forward pass) / time of a forward pass, timed on the explained model in the same run (eager
model, gradient with respect to the input as the white-box solvers take it, `ROWS` rows tiled
from the errors, best of `REPEATS` after a warm-up). Every gradient query also did its forward
pass, which `queries` counts already, so it adds only the backward part. The ratio and its
timings are recorded in the board's provenance under "cost". Scores resumed from the store keep
the ratio of the run that computed them; the provenance says whether this run measured it.

Why a measured ratio and not a constant: reverse-mode differentiation costs a small constant
multiple of the forward pass (the "cheap gradient principle", Griewank & Walther, Evaluating
Derivatives, 2nd ed. 2008, https://doi.org/10.1137/1.9780898717761), but the constant depends on
the model and the kernels; decision-based attacks are compared in forward queries alone (Chen et
al. 2020, HopSkipJumpAttack, https://arxiv.org/abs/1904.02144).
"""

from __future__ import annotations

import time

import torch

from bench.contract.metrics import CFBatch, MetricContext, metric
from metrics import CF_METRICS

ROWS = 256  # rows per timed pass (the oracle's default batch)
REPEATS = 5  # timed passes of each kind; the fastest counts (the least disturbed by other work)
_KEY = "cost/backward_over_forward"


def backward_forward_ratio(model: torch.nn.Module, x: torch.Tensor, rows: int = ROWS,
                           repeats: int = REPEATS) -> dict:
    """Time `model`'s forward pass and its forward + input-gradient pass on `rows` rows tiled from x.

    Returns:
        dict(ratio = (t_forward_backward - t_forward) / t_forward, forward_s, forward_backward_s, rows,
        repeats, device): best-of-`repeats` seconds per pass of `rows` rows.
    """
    if len(x) == 0:
        raise ValueError("the ratio needs at least one input row")
    device = next(model.parameters()).device
    reps = -(-rows // len(x))
    xb = x.detach().to(device, torch.float32).repeat(reps, *[1] * (x.dim() - 1))[:rows]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def forward():
        with torch.no_grad():
            model(xb)

    def forward_backward():
        xg = xb.clone().requires_grad_(True)
        with torch.enable_grad():
            out = model(xg)
            (g,) = torch.autograd.grad(out.max(1).values.sum(), xg)
        return g

    def best(fn) -> float:
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_f, t_fb = best(forward), best(forward_backward)
    return dict(ratio=round(max(t_fb - t_f, 0.0) / t_f, 4), forward_s=round(t_f, 6), forward_backward_s=round(t_fb, 6),
                rows=rows, repeats=repeats, device=str(device))


def ratio(ctx: MetricContext, x: torch.Tensor) -> dict:
    """The run's measured ratio (timed once per run, on the first batch the metric sees)."""
    if ctx.oracle is None:
        raise ValueError("cost needs ctx.oracle (the explained model, to time its passes)")
    return ctx.once(_KEY, lambda: dict(backward_forward_ratio(ctx.oracle.unwrap(), x), measured_in_this_run=True))


def _provenance(ctx: MetricContext) -> dict:
    """The ratio behind the cost column; timed now on test images if every cost score came from the store."""
    if _KEY in ctx.memo:
        return {"cost": dict(ctx.memo[_KEY])}
    if ctx.oracle is None or ctx.data is None:
        return {"cost": dict(measured_in_this_run=False)}
    out = backward_forward_ratio(ctx.oracle.unwrap(), ctx.data.test.x[:ROWS])
    return {"cost": dict(out, measured_in_this_run=True, scores_from_store=True,
                         note="every cost score came from the store, computed with the ratio of the run that scored it; "
                              "this ratio was timed now on test images")}


@metric(CF_METRICS, provenance=_provenance, higher_is_better=False, version="1",
        definition="queries + r * grad_queries in forward-pass equivalents; r = backward / forward time of the "
                   "model, measured in the run (provenance: cost)")
def cost(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """Model queries in forward-pass equivalents: a gradient query costs r forward passes more."""
    r = ratio(ctx, b.x)["ratio"]
    return b.queries.double().cpu() + r * b.grad_queries.double().cpu()
