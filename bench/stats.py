"""Statistics for published numbers: an interval that fits each kind of quantity, paired tests, corrections.

- Proportions (0/1 scores: validity, oracle agreement): the Wilson score interval
  (Wilson 1927; `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`).
- Means of continuous scores: scipy's BCa bootstrap (Efron 1987), seeded; where BCa is
  undefined (its jackknife acceleration is 0/0, e.g. one outlier among ties) the percentile
  bootstrap, and the cell says which.
- A constant sample, or fewer than 2 values: no interval (lo = hi = NaN, method "none").
- Timing columns: one measurement per batch, so no interval ("timing").
- Across training seeds: a Student t interval over the seed means (each seed mean carries its
  own sampling error, so their spread holds both the seed and the instance variance).
- Across training seeds on a common image set (every model explains the same images):
  a two-level bootstrap, seeds with replacement within each model, then the images with
  replacement, one image draw shared by the models compared (`hierarchical`,
  `hierarchical_difference`), so an interval and a test hold both the seed and the image
  variance and two models stay paired image by image.
- Paired tests: two-sided sign-flip permutation test on per-instance differences, exact when
  2^n <= n_perm, seeded Monte Carlo otherwise.
- Multiple tests: Holm (family-wise) and Benjamini-Hochberg (false discovery rate).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

ALPHA = 0.05
MEAN, PROPORTION, TIMING = "mean", "proportion", "timing"  # the kinds a metric declares
METHODS = {  # interval method -> what it means (legends and leaderboards/README.md)
    "wilson": "Wilson score interval for a proportion",
    "bca": "BCa bootstrap of the mean",
    "percentile": "percentile bootstrap of the mean (BCa undefined for this sample)",
    "none": "no interval: a constant sample or fewer than 2 values",
    "timing": "no interval: a time per instance is one batch's time / batch size, one measurement",
    "t": "Student t interval over the seed means",
    "hierarchical": "two-level percentile bootstrap: training seeds, then the common images",
}


@dataclass(frozen=True)
class Cell:
    mean: float
    lo: float
    hi: float
    n: int  # finite values aggregated
    n_nan: int  # NaN/inf values counted and left out (never silently averaged)
    method: str = "none"  # a key of METHODS


def _finite(values) -> tuple[np.ndarray, int]:
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(v)
    return v[ok], int((~ok).sum())


def proportion_ci(values, alpha: float = ALPHA) -> Cell:
    """Share of ones among the finite 0/1 `values` and its Wilson interval (any n >= 1)."""
    v, n_nan = _finite(values)
    if len(v) == 0:
        return Cell(np.nan, np.nan, np.nan, 0, n_nan)
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError(f"a proportion needs 0/1 values, got {sorted(set(v.tolist()) - {0.0, 1.0})[:3]}")
    k, n = int(v.sum()), len(v)
    ci = st.binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
    return Cell(k / n, float(ci.low), float(ci.high), n, n_nan, "wilson")


def mean_ci(values, n_boot: int = 1000, seed: int = 0, alpha: float = ALPHA) -> Cell:
    """Mean of the finite `values` with a seeded BCa bootstrap interval (percentile where BCa is undefined)."""
    v, n_nan = _finite(values)
    if len(v) == 0:
        return Cell(np.nan, np.nan, np.nan, 0, n_nan)
    mean = float(v.mean())
    if len(v) < 2 or np.all(v == v[0]):
        return Cell(mean, np.nan, np.nan, len(v), n_nan, "none")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning: BCa undefined here, try the percentile
            res = st.bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=1 - alpha, method=method,
                               random_state=np.random.default_rng(seed), vectorized=True)
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return Cell(mean, lo, hi, len(v), n_nan, method.lower())
    return Cell(mean, np.nan, np.nan, len(v), n_nan, "none")


def timing_cell(values) -> Cell:
    """Mean time per instance, no interval (each value is a batch's time shared by its rows)."""
    v, n_nan = _finite(values)
    return Cell(float(v.mean()) if len(v) else np.nan, np.nan, np.nan, len(v), n_nan, "timing")


def cell(values, kind: str = MEAN, n_boot: int = 1000, seed: int = 0) -> Cell:
    """The interval that fits `kind` (MEAN, PROPORTION or TIMING)."""
    if kind == PROPORTION:
        return proportion_ci(values)
    if kind == TIMING:
        return timing_cell(values)
    return mean_ci(values, n_boot=n_boot, seed=seed)


def t_interval(values, alpha: float = ALPHA) -> Cell:
    """Mean of per-seed values and a Student t interval (n - 1 degrees of freedom); none below 2 values."""
    v, n_nan = _finite(values)
    if len(v) == 0:
        return Cell(np.nan, np.nan, np.nan, 0, n_nan)
    mean = float(v.mean())
    if len(v) < 2 or np.all(v == v[0]):
        return Cell(mean, np.nan, np.nan, len(v), n_nan, "none")
    half = float(st.t.ppf(1 - alpha / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return Cell(mean, mean - half, mean + half, len(v), n_nan, "t")


def paired_pvalue(a, b, n_perm: int = 5000, seed: int = 0) -> float:
    """Two-sided sign-flip permutation p-value for mean(a - b) == 0 over paired finite rows.

    Exact (every sign pattern) when 2^n <= n_perm, so a small n shows its true floor 2 / 2^n;
    else n_perm seeded random patterns, p = (1 + #{|null| >= |observed|}) / (n_perm + 1).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if len(d) == 0 or np.all(d == 0):
        return 1.0
    observed = abs(d.mean()) - 1e-12 * max(1.0, abs(d).max())
    if 2 ** len(d) <= n_perm:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(d))))
        return float((np.abs(signs @ d / len(d)) >= observed).mean())
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n_perm, len(d)))
    null = np.abs((signs * d).mean(axis=1))
    return float((1 + (null >= observed).sum()) / (n_perm + 1))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adj = np.maximum.accumulate([(m - i) * p[j] for i, j in enumerate(order)])
    out[order] = np.minimum(adj, 1.0)
    return out


def bh(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate; scipy); NaN entries stay NaN."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = st.false_discovery_control(p[ok], method="bh")
    return out


def kendall_tau(a, b) -> float:
    """Kendall tau-b of two score vectors over their common finite entries (NaN below 3 or when one is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.unique(a[ok]).size < 2 or np.unique(b[ok]).size < 2:
        return float("nan")
    return float(st.kendalltau(a[ok], b[ok]).statistic)


def tau_null_sd(k: int) -> float:
    """SD of Kendall tau between two independent random rankings of k items."""
    return float(np.sqrt(2 * (2 * k + 5) / (9 * k * (k - 1)))) if k > 1 else float("nan")


def min_detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = 0.8) -> float:
    """Smallest paired mean difference a two-sided test at `alpha` detects with `power` (normal approximation)."""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    return float((st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * sd / np.sqrt(n))


def _seed_image_draws(n_seeds: tuple[int, ...], n_images: int, n_boot: int, seed: int):
    """Per model a (n_boot, n_seeds) seed draw; one shared (n_boot, n_images) image draw."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n_images, size=(n_boot, n_images))
    return [rng.integers(0, k, size=(n_boot, k)) for k in n_seeds], images


def _boot_means(values: np.ndarray, seeds: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Per draw, the mean over the drawn seeds and drawn images of `values` (seeds x images), NaN left out."""
    drawn = np.take_along_axis(values[seeds], images[:, None, :], axis=2)  # (n_boot, seeds, images)
    return np.nanmean(drawn, axis=(1, 2))


def hierarchical(values, n_boot: int = 2000, seed: int = 0, alpha: float = ALPHA) -> Cell:
    """Mean of a (training seeds x common images) score matrix and its two-level bootstrap interval.

    The mean is over every finite entry; a bootstrap draw takes the seeds with replacement, then
    the images with replacement (module docstring). None below 2 seeds or 2 images, or constant;
    a constant 0/1 matrix (every row valid, say) gets the Wilson interval of its pooled rows
    instead ("wilson-pooled"): no draw can move it, but n rows still bound the proportion.
    """
    v = np.asarray(values, np.float64)
    finite = np.isfinite(v)
    n, n_nan = int(finite.sum()), int((~finite).sum())
    if n == 0:
        return Cell(np.nan, np.nan, np.nan, 0, n_nan)
    mean = float(v[finite].mean())
    constant = bool(np.all(v[finite] == v[finite][0]))
    if v.shape[0] < 2 or v.shape[1] < 2 or (constant and v[finite][0] not in (0.0, 1.0)):
        return Cell(mean, np.nan, np.nan, n, n_nan, "none")
    if constant:
        c = proportion_ci(v[finite])
        return Cell(mean, c.lo, c.hi, n, n_nan, "wilson-pooled")
    (seeds,), images = _seed_image_draws((v.shape[0],), v.shape[1], n_boot, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw of all-NaN entries: NaN, left out
        boot = _boot_means(v, seeds, images)
    lo, hi = np.nanquantile(boot, [alpha / 2, 1 - alpha / 2])
    return Cell(mean, float(lo), float(hi), n, n_nan, "hierarchical")


@dataclass(frozen=True)
class Difference:
    diff: float  # mean(a) - mean(b) over their common images
    lo: float
    hi: float
    p: float  # two-sided bootstrap p-value for diff == 0
    se: float  # bootstrap standard error of diff
    n_images: int


def hierarchical_difference(a, b, n_boot: int = 2000, seed: int = 0, alpha: float = ALPHA) -> Difference:
    """Two models' score matrices (seeds x the same images) compared: mean difference, interval, p.

    Each draw resamples each model's seeds on its own and the images once for both (they are
    the same images), so the difference is paired by image and carries both models' seed
    variance. p = 2 x the smaller share of draws on either side of 0 (at least 1 / n_boot).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"hierarchical_difference: {a.shape[1]} vs {b.shape[1]} images; the images must be the same")
    diff = float(np.nanmean(a) - np.nanmean(b))
    if min(a.shape[0], b.shape[0]) < 2 or a.shape[1] < 2:
        return Difference(diff, np.nan, np.nan, np.nan, np.nan, a.shape[1])
    (sa, sb), images = _seed_image_draws((a.shape[0], b.shape[0]), a.shape[1], n_boot, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = _boot_means(a, sa, images) - _boot_means(b, sb, images)
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, max(2 * min((boot <= 0).mean(), (boot >= 0).mean()), 1 / len(boot)))
    return Difference(diff, float(lo), float(hi), float(p), float(boot.std(ddof=1)), a.shape[1])


def detectable_from_se(se: float, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at `alpha` detects with `power`, given its standard error."""
    return float((st.norm.ppf(1 - alpha / 2) + st.norm.ppf(power)) * se) if np.isfinite(se) else float("nan")
