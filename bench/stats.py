"""Statistics for leaderboard cells: seeded percentile-bootstrap CIs and paired tests.

Efron & Tibshirani 1993 for the percentile bootstrap; the paired test is a two-sided
sign-flip permutation test on per-instance differences (exact in spirit, seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Cell:
    mean: float
    lo: float
    hi: float
    n: int  # finite values aggregated
    n_nan: int  # NaN/inf values counted and left out (never silently averaged)


def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> Cell:
    """Mean and (1 - alpha) percentile-bootstrap CI of the finite entries of `values`."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    v, n_nan = v[finite], int((~finite).sum())
    if len(v) == 0:
        return Cell(float("nan"), float("nan"), float("nan"), 0, n_nan)
    mean = float(v.mean())
    if len(v) == 1 or np.all(v == v[0]):
        return Cell(mean, mean, mean, len(v), n_nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    means = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return Cell(mean, float(lo), float(hi), len(v), n_nan)


def paired_pvalue(a, b, n_perm: int = 5000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value for mean(a - b) == 0 over paired finite rows."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(d)))
    observed = abs(d.mean())
    null = np.abs((signs * d).mean(axis=1))
    return float((1 + (null >= observed - 1e-15).sum()) / (n_perm + 1))
