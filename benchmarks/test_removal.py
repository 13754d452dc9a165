"""pytest-benchmark: each removal-operator metric (metrics/removal.py) against deletion_auc, one run.

    pytest benchmarks/test_removal.py -o addopts= --benchmark-only --benchmark-json=.benchmarks/removal.json
    python -m benchmarks.test_removal .benchmarks/removal.json     # the ratio table
    python -m benchmarks.test_removal leakage                      # the leakage table (metrics/leakage.py)
    python -m benchmarks.test_removal operators leaderboards/mnist/cnn   # a board's operators compared

Same maps (saliency on every error of the default CNN), same oracle, same process for both sides.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from metrics import ATTR_METRICS
from metrics.operators import OPERATORS

NAMES = ["deletion_auc"] + [f"{w}_{op}" for op in OPERATORS for w in ("del_morf", "del_lerf", "srg")]


@pytest.fixture(scope="module")
def saliency_batch(cnn, errors, mnist):
    from bench.contract.oracle import Oracle
    from solvers import ATTRIBUTIONS

    o = Oracle(cnn[0])
    attr = ATTRIBUTIONS.get("saliency")(o)(errors.x, errors.pred, None).attr
    return errors, attr, MetricContext(oracle=o, data=mnist)


@pytest.mark.benchmark(group="removal")
@pytest.mark.parametrize("name", NAMES)
def test_removal_metric(benchmark, name, saliency_batch):
    errors, attr, ctx = saliency_batch
    fn = ATTR_METRICS.get(name)
    # a fresh batch each round: the metrics memoise their curves on the batch (srg reuses both orders)
    benchmark.pedantic(lambda: fn(AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(attr))), ctx),
                       rounds=3, warmup_rounds=1)
    benchmark.extra_info["n"] = len(attr)
    # the ratio measured interleaved (metric, deletion_auc, metric, ...), best of 3 each: robust to a busy machine
    base, times = ATTR_METRICS.get("deletion_auc"), {"metric": [], "deletion_auc": []}
    for _ in range(3):
        for key, f in (("metric", fn), ("deletion_auc", base)):
            t = time.perf_counter()
            f(AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(attr))), ctx)
            times[key].append(time.perf_counter() - t)
    benchmark.extra_info["ratio_to_deletion_auc"] = min(times["metric"]) / min(times["deletion_auc"])


def ratios(path: str) -> None:
    runs = {b["name"][len("test_removal_metric["):-1]: b for b in json.load(open(path))["benchmarks"]
            if b["name"].startswith("test_removal_metric[")}
    base = runs["deletion_auc"]["stats"]["mean"]
    print(f"{'metric':<16} {'mean s':>8} {'/ deletion_auc':>15} {'interleaved best-of-3 ratio':>28}")
    for name in NAMES:
        if name in runs:
            m = runs[name]["stats"]["mean"]
            print(f"{name:<16} {m:>8.3f} {m / base:>15.2f} {runs[name]['extra_info']['ratio_to_deletion_auc']:>28.2f}")


def leakage(n: int = 2000) -> None:
    """ROAD's checks per operator on the first n MNIST test images, masks from the CNN's saliency (MoRF)."""
    from bench.config import make_config
    from bench.contract.oracle import Oracle
    from bench.data import load_dataset
    from bench.models.train import load_or_train
    from metrics.leakage import FRACTIONS, leakage_table
    from metrics.operators import order_rank, remove
    from solvers import ATTRIBUTIONS

    torch.set_num_threads(2)
    data = load_dataset("mnist")
    model, _ = load_or_train(make_config("default", device="cpu"), data, torch.device("cpu"), progress=False)
    o = Oracle(model, "cpu")
    x, y = data.test.x[:n], data.test.y[:n]
    pred = o.probs(x).argmax(1)
    for ranking in ("saliency", "random"):
        attr = ATTRIBUTIONS.get(ranking)(o)(x, pred, None).attr
        rank = order_rank(attr, "morf").view(n, 28, 28)
        print(f"\nmasks: {ranking}, MoRF, fractions {FRACTIONS} (image i gets fraction i mod 5), {n} test images, "
              f"held-out 1/4")
        print(f"{'operator':<8} {'detector AUC':>12} {'accuracy':>9} {'chance':>7} {'class from mask':>16} {'chance':>7}")
        ops = ("none", "zeros", "blur", "mean", "road", ("road0", lambda x, m, g: remove(x, m, "road", noise=0.0)))
        for r in leakage_table(x, y, rank, ops):
            print(f"{r['operator']:<8} {r['detector_auc']:>12.3f} {r['detector_accuracy']:>9.3f} "
                  f"{r['detector_chance']:>7.3f} {r['class_from_mask']:>16.3f} {r['class_chance']:>7.3f}")


def operators(folder: str, k: int = 112) -> None:
    """A board's removal columns side by side: method rankings per operator against zeros (Kendall tau over
    the real methods, the random control left out), the methods whose rank moves most, and how much each
    operator's MoRF score follows the share of ink (x > 0) among each map's first k removed pixels."""
    import numpy as np
    import pandas as pd
    from scipy.stats import kendalltau, spearmanr

    from bench import board
    from bench.data import load_dataset
    from metrics.operators import order_rank

    df = board.read_table(board.ATTRIBUTIONS.csv(folder)).set_index("method")
    real = df[df.index != "random"]
    ops = [op for op in OPERATORS if f"del_morf_{op}" in df.columns]
    errors = pd.read_csv(f"{folder}/errors.csv")
    x = load_dataset("mnist").test.x[torch.as_tensor(errors["test_index"].to_numpy())].flatten(1).numpy()
    maps = np.load(board.ATTRIBUTIONS.artifacts(folder))
    ink = {}
    for m in real.index:
        a = torch.from_numpy(maps[f"{m}|predicted"].astype(np.float32)).unsqueeze(1)
        first = order_rank(a, "morf").numpy() < k
        ink[m] = float(((x > 0) & first).sum(1).mean() / k)
    ink = pd.Series(ink)
    print(f"{len(real)} real methods; ink share of the first {k} MoRF pixels: {ink.min():.2f}..{ink.max():.2f}\n")
    print(f"{'column':<16} {'tau vs zeros':>12} {'Spearman(ink share, score)':>27}   most moved (rank zeros -> rank here)")
    for which in ("del_morf", "del_lerf", "srg"):
        base = real[f"{which}_zeros"].astype(float)
        hib = which != "del_morf"
        for op in ops:
            col = real[f"{which}_{op}"].astype(float)
            tau = kendalltau(base, col).statistic
            rho = spearmanr(ink[col.index], col).statistic
            r0, r1 = base.rank(ascending=not hib), col.rank(ascending=not hib)
            moved = (r1 - r0).abs().sort_values(ascending=False).index[:3]
            print(f"{which + '_' + op:<16} {tau:>12.3f} {rho:>27.3f}   "
                  + ", ".join(f"{m} {int(r0[m])}->{int(r1[m])}" for m in moved))


if __name__ == "__main__":
    if sys.argv[1:2] == ["leakage"]:
        leakage()
    elif sys.argv[1:2] == ["operators"]:
        operators(sys.argv[2])
    else:
        ratios(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/removal.json")
