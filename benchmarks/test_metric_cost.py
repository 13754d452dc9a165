"""Per attribution metric of the default board: seconds per instance over its own model-call floor.

The floor of a metric is the model rows it makes the oracle evaluate (forwards, and the forwards
of re-explanations) divided by the forward rate measured in the same run (rows/s of the oracle's
gradient-free forward at 256 rows per call, the path the metrics' forwards take; the bare eager
model's rate is printed beside it). ratio = seconds / floor: 1 would be a metric that costs
only its forward passes; re-explaining metrics also pay backward passes and the method's own
work, so their ratio is above their rows' forward cost by construction. Saliency maps of every
error of the default CNN; each metric on a fresh context (the robustness metrics' shared noisy
re-explanations are charged to each of them; `robustness_shared` is the three together).

    pytest benchmarks/test_metric_cost.py -o addopts= --benchmark-only --benchmark-json=J
    python -m benchmarks.test_metric_cost J      # the table
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time

import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from bench.tasks import metric_fns
from metrics import ATTR_METRICS

BOARD = [f.metric_name for f in metric_fns(ATTR_METRICS, [])]
SHARED = ("q_max_sensitivity", "q_avg_sensitivity", "q_local_lipschitz_estimate")


@pytest.fixture(scope="module")
def saliency(cnn, errors, mnist):
    from bench.contract.oracle import Oracle
    from solvers import ATTRIBUTIONS

    o = Oracle(cnn[0])
    method = ATTRIBUTIONS.get("saliency")(o)
    attr = method(errors.x, errors.pred, None).attr
    b = AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(attr)), method="saliency",
                  explain_fn=lambda x, t: method(x, t, None).attr)
    return o, b, mnist


def _rate(forward, x) -> float:
    with torch.no_grad():
        forward(x[:512])
        t0 = time.perf_counter()
        forward(x)
    return len(x) / (time.perf_counter() - t0)


@pytest.mark.benchmark(group="metric_cost")
def test_raw_forward_rate(benchmark, saliency, cnn, mnist):
    """The floor's rate: the oracle's gradient-free forward (its optimised copy, as the metrics get it)."""
    o, x = saliency[0], mnist.test.x[:4096]
    rates = []
    benchmark.pedantic(lambda: rates.append(_rate(o.logits, x)), rounds=3, warmup_rounds=1)
    benchmark.extra_info["rows_per_s"] = max(rates)
    benchmark.extra_info["eager_rows_per_s"] = _rate(lambda v: torch.cat([cnn[0](c) for c in v.split(256)]), x)


@pytest.mark.parametrize("names", [(n,) for n in BOARD] + [SHARED], ids=lambda n: n[0] if len(n) == 1 else "robustness_shared")
@pytest.mark.benchmark(group="metric_cost")
def test_metric(benchmark, saliency, cnn, mnist, names):
    o, b, data = saliency
    fns = [ATTR_METRICS.get(n) for n in names]
    rows = []

    def once():  # a fresh batch and context: nothing a metric caches carries over
        ctx = MetricContext(oracle=o, data=data, seed=0, cache_dir="/tmp/bench-benchmark-cache",
                            model_sha256=cnn[1]["weights_sha256"])
        fresh = dataclasses.replace(b)
        before = o.total_rows
        for f in fns:
            f(fresh, ctx)
        rows.append(o.total_rows - before)

    benchmark.pedantic(once, rounds=2, warmup_rounds=1)
    benchmark.extra_info.update(n=len(b.x), rows=rows[-1], metrics=list(names))


def main(path: str) -> None:
    data = json.load(open(path))
    by = {x["name"]: x for x in data["benchmarks"]}
    rate = by["test_raw_forward_rate"]["extra_info"]["rows_per_s"]
    eager = by["test_raw_forward_rate"]["extra_info"].get("eager_rows_per_s", float("nan"))
    print(f"forward rate: {rate:,.0f} rows/s through the oracle (its optimised copy; the bare eager model "
          f"{eager:,.0f}), 256 rows per call, no grad\n")
    print(f"{'metric':<30} {'s / instance':>12} {'rows / instance':>16} {'floor s / inst':>15} {'ratio':>8}")
    out = []
    for name, x in by.items():
        if not name.startswith("test_metric["):
            continue
        n, rows, sec = x["extra_info"]["n"], x["extra_info"]["rows"], x["stats"]["mean"]
        floor = rows / n / rate
        out.append((name[len("test_metric["):-1], sec / n, rows / n, floor, sec / n / floor if floor else float("nan")))
    for label, s, r, f, ratio in sorted(out, key=lambda t: -t[1]):
        print(f"{label:<30} {s:>12.5f} {r:>16.1f} {f:>15.6f} {ratio:>8.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
