"""pytest-benchmark: Quantus 0.6 faithfulness metrics (metrics.quantus_reference, the reference)
against their batched versions (metrics.quantus_faithfulness), one run, seconds per instance.

    pytest benchmarks/test_quantus_faithfulness.py -o addopts= --benchmark-only \\
        --benchmark-json=.benchmarks/quantus_faithfulness.json
    python -m benchmarks.test_quantus_faithfulness .benchmarks/quantus_faithfulness.json   # the ratio table

Same maps (saliency on every error of the default CNN), same oracle (the default one: Quantus
drives its eager module, the fast path its frozen TorchScript copy, as in a board run), same
process, the board's default parameters, for both sides.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import quantus_faithfulness as fast
from metrics import quantus_reference as quantus

PAIRS = {  # name: (Quantus reference, fast version)
    "faithfulness_correlation": (quantus.faithfulness_correlation, fast.faithfulness_correlation),
    "faithfulness_estimate": (quantus.faithfulness_estimate, fast.faithfulness_estimate),
    "monotonicity_correlation": (quantus.monotonicity_correlation, fast.monotonicity_correlation),
    "pixel_flipping": (quantus.pixel_flipping, fast.pixel_flipping),
}


@pytest.fixture(scope="module")
def saliency_batch(cnn, errors):
    from bench.contract.oracle import Oracle
    from solvers import ATTRIBUTIONS

    o = Oracle(cnn[0])
    attr = ATTRIBUTIONS.get("saliency")(o)(errors.x, errors.pred, None).attr
    ctx = MetricContext(oracle=o, seed=0)
    tiny = AttrBatch(errors.x[:2], attr[:2], errors.pred[:2], torch.zeros(2))
    for q, f in PAIRS.values():  # imports (Quantus pulls in TensorFlow: ~10 s) and first calls, untimed
        q(tiny, ctx), f(tiny, ctx)
    return AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(attr))), ctx


@pytest.mark.benchmark(group="quantus_faithfulness")
@pytest.mark.parametrize("side", ["quantus", "fast"])
@pytest.mark.parametrize("name", list(PAIRS))
def test_quantus_faithfulness(benchmark, name, side, saliency_batch):
    b, ctx = saliency_batch
    q, f = PAIRS[name]
    n = len(b.x)
    benchmark.extra_info["n"] = n
    if side == "fast":
        benchmark.pedantic(f, args=(b, ctx), rounds=5, warmup_rounds=1)
        return
    # Quantus' slowest (monotonicity: 280 model calls per 128 rows) costs ~10-30 s a call here
    benchmark.pedantic(q, args=(b, ctx), rounds=1, warmup_rounds=0)
    # the ratio measured interleaved (Quantus, fast, Quantus, ...), best of 3 each: robust to a busy machine
    times = {"quantus": [], "fast": []}
    for _ in range(3):
        for key, fn in (("quantus", q), ("fast", f)):
            t = time.perf_counter()
            fn(b, ctx)
            times[key].append(time.perf_counter() - t)
    benchmark.extra_info.update({f"best_{k}_s_per_instance": min(v) / n for k, v in times.items()})
    benchmark.extra_info["interleaved_ratio"] = min(times["quantus"]) / min(times["fast"])


def ratios(path: str) -> None:
    runs = {b["name"]: b for b in json.load(open(path))["benchmarks"] if b["name"].startswith("test_quantus_faith")}
    print("seconds per instance: interleaved best of 3 (pytest-benchmark mean of its own rounds in brackets)")
    print(f"{'metric':<26} {'Quantus':>17} {'fast':>17} {'Quantus / fast':>15}")
    for name in PAIRS:
        q, f = (runs.get(f"test_quantus_faithfulness[{name}-{side}]") for side in ("quantus", "fast"))
        if q and f and "interleaved_ratio" in q["extra_info"]:
            info, n = q["extra_info"], q["extra_info"]["n"]
            mq, mf = q["stats"]["mean"] / n, f["stats"]["mean"] / n
            print(f"{name:<26} {info['best_quantus_s_per_instance']:>8.4f} ({mq:.4f}) "
                  f"{info['best_fast_s_per_instance']:>8.4f} ({mf:.4f}) {info['interleaved_ratio']:>7.1f} ({mq / mf:.1f})")


if __name__ == "__main__":
    ratios(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/quantus_faithfulness.json")
