"""pytest-benchmark suite: our speed against the anchors, measured in one run.

Run with `tox -e perf` (or `pytest benchmarks -o addopts= --benchmark-only
--benchmark-json=.benchmarks/perf.json && python benchmarks/ratios.py .benchmarks/perf.json`).
Each pair of benchmarks shares a `group`; `ratios.py` divides their means. Same instances,
same model, same process for both sides of every ratio.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from solvers import ATTRIBUTIONS, SOLVERS

N_ALIBI = 2  # alibi's Wachter solver costs tens of seconds per image


def _grad_saliency(oracle, x, target):
    x = x.clone().requires_grad_(True)
    out = oracle.logits_grad(x).gather(1, target.view(-1, 1)).sum()
    return torch.autograd.grad(out, x)[0].abs()


# -- oracle overhead vs a raw forward pass ---------------------------------------------------
@pytest.mark.benchmark(group="oracle")
def test_raw_forward(benchmark, cnn, mnist):
    model, x = cnn[0], mnist.test.x[:2048]

    def raw():
        with torch.no_grad():
            return torch.cat([model(c) for c in x.split(256)])

    benchmark.pedantic(raw, rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="oracle")
def test_oracle_forward(benchmark, oracle, mnist):
    x = mnist.test.x[:2048]
    oracle.start(len(x))
    benchmark.pedantic(oracle.logits, args=(x,), rounds=5, warmup_rounds=1)


# -- gradient solver vs alibi Counterfactual (Wachter), per instance --------------------------
@pytest.mark.benchmark(group="wachter")
def test_gradient_solver(benchmark, oracle, errors):
    solver = SOLVERS.get("gradient")(oracle)
    x, t = errors.x[:N_ALIBI], errors.true[:N_ALIBI]
    oracle.start(N_ALIBI)
    benchmark.extra_info["n"] = N_ALIBI
    benchmark.pedantic(solver, args=(x, t), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="wachter")
def test_alibi_wachter(benchmark, oracle, errors, mnist):
    solver = SOLVERS.get("alibi_wachter")(oracle.black_box()).fit(mnist.train.x, mnist.train.y)
    x, t = errors.x[:N_ALIBI], errors.true[:N_ALIBI]
    try:
        solver(x[:1], t[:1])  # warm-up: worker start, TensorFlow import
        oracle.start(N_ALIBI)
        benchmark.extra_info["n"] = N_ALIBI
        result = benchmark.pedantic(solver, args=(x, t), rounds=1, iterations=1)
        benchmark.extra_info["valid"] = int(result.success.sum())
    finally:
        solver.close()


# -- batched Growing Spheres vs the same algorithm one instance at a time ---------------------
N_GS = 8


@pytest.mark.benchmark(group="growing_spheres")
def test_growing_spheres_batched(benchmark, oracle, errors):
    solver = SOLVERS.get("growing_spheres")(oracle.black_box())
    x, t = errors.x[:N_GS], errors.true[:N_GS]

    def batched():
        oracle.start(N_GS)
        return solver(x, t)

    benchmark.pedantic(batched, rounds=2, warmup_rounds=1)


@pytest.mark.benchmark(group="growing_spheres")
def test_growing_spheres_per_instance_loop(benchmark, oracle, errors):
    solver = SOLVERS.get("growing_spheres")(oracle.black_box())
    x, t = errors.x[:N_GS], errors.true[:N_GS]

    def loop():
        out = []
        for i in range(N_GS):
            oracle.start(1)
            out.append(solver(x[i:i + 1], t[i:i + 1]))
        return out

    benchmark.pedantic(loop, rounds=2, warmup_rounds=1)


# -- deletion AUC vs Quantus PixelFlipping, same steps, same images ---------------------------
@pytest.fixture(scope="module")
def attr_batch(cnn, errors, mnist):
    from bench.contract.oracle import Oracle

    o = Oracle(cnn[0])
    attr = _grad_saliency(o, errors.x, errors.pred)
    ctx = MetricContext(oracle=o, data=mnist)
    return AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(errors.x)), method="saliency"), ctx


@pytest.mark.benchmark(group="deletion")
def test_deletion_auc(benchmark, attr_batch):
    from metrics import ATTR_METRICS

    b, ctx = attr_batch
    benchmark.pedantic(ATTR_METRICS.get("deletion_auc"), args=(b, ctx), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="deletion")
def test_quantus_pixel_flipping(benchmark, attr_batch):
    from metrics import ATTR_METRICS

    b, ctx = attr_batch
    benchmark.pedantic(ATTR_METRICS.get("q_pixel_flipping"), args=(b, ctx), rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="deletion")
def test_deletion_bare_forwards(benchmark, attr_batch):
    """The forward passes deletion AUC needs (N x 29 rows) and nothing else."""
    b, ctx = attr_batch
    rows = b.x.repeat(29, 1, 1, 1)
    benchmark.pedantic(ctx.oracle.probs, args=(rows,), rounds=5, warmup_rounds=1)


# -- attribution methods over all errors (one pass each, defaults) ----------------------------
@pytest.mark.benchmark(group="attribution_methods")
@pytest.mark.parametrize("name", ATTRIBUTIONS.names())
def test_attribution_method(benchmark, name, oracle, mnist, errors):
    cls = ATTRIBUTIONS.get(name)
    method = cls(oracle if cls.white_box else oracle.black_box()).fit(mnist.train.x, mnist.train.y)
    method(errors.x[:2], errors.pred[:2])
    benchmark.extra_info.update(n=len(errors), params=dataclasses.asdict(method.params))
    benchmark.pedantic(method, args=(errors.x, errors.pred), rounds=1, iterations=1)


# -- the default pipeline's cost growth at 1x, 2x, 4x instances ------------------------------
@pytest.mark.benchmark(group="scaling")
@pytest.mark.parametrize("n", [8, 16, 32])
def test_run_cost_growth(benchmark, n, tmp_path, cache_dir):
    from bench.config import make_config
    from bench.runner import run

    def once():
        store = tmp_path / f"s{once.calls}.sqlite"
        once.calls += 1
        cfg = make_config("ci", [f'store="{store}"', "n_figure=2"], out=str(tmp_path / "lb"), cache_dir=cache_dir,
                          limit=n, device="cpu")
        return run(cfg, progress=False)

    once.calls = 0
    benchmark.extra_info["n"] = n
    benchmark.pedantic(once, rounds=1, iterations=1)


# -- the default pipeline's cost per error (issue: a 10-minute cold default run) -------------
@pytest.mark.benchmark(group="pipeline")
def test_default_pipeline_cost_per_error(benchmark, tmp_path, cache_dir):
    """The default preset (every solver and method, its metrics) on the first 12 errors, fresh store.

    extra_info["seconds_per_error"] is the figure to track; the numerical-gradient alibi solvers
    run on their documented first 5, so the per-error cost of a 12-error run overstates the
    whole run's (89 errors) by the share those 5 take.
    """
    from bench.config import make_config
    from bench.runner import run

    n = 12

    def once():
        cfg = make_config("default", [f'store="{tmp_path / "s.sqlite"}"'], out=str(tmp_path / "out"),
                          cache_dir=cache_dir, limit=n, device="cpu")
        return run(cfg, progress=False)

    summary = benchmark.pedantic(once, rounds=1, iterations=1)
    benchmark.extra_info.update(n=n, seconds_per_error=round(summary["seconds"] / n, 2))


# -- ROAD (noisy linear imputation, both orders) vs deletion AUC, same maps --------------------
@pytest.mark.benchmark(group="road")
def test_deletion_curves_of_one_method(benchmark, oracle, errors):
    from metrics.deletion_insertion import deletion_curves

    attr = ATTRIBUTIONS.get("saliency")(oracle)(errors.x, errors.pred, None).attr
    benchmark.pedantic(deletion_curves, args=(oracle, errors.x, attr, errors.pred), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="road")
def test_road_curves_both_orders_of_one_method(benchmark, oracle, errors):
    from metrics.road import road_curves

    attr = ATTRIBUTIONS.get("saliency")(oracle)(errors.x, errors.pred, None).attr
    benchmark.pedantic(lambda: (road_curves(oracle, errors.x, attr, errors.pred, "morf"),
                                road_curves(oracle, errors.x, attr, errors.pred, "lerf")), rounds=3, warmup_rounds=1)
