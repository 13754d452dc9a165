"""Row-wise similarities of attribution maps, vectorised, equal to what Quantus' similarity functions give.

`spearman_rows` (scipy.stats.spearmanr per row on masked entries: average ranks, np.corrcoef's
steps) and `ssim_rows` (skimage's structural_similarity per row, its float32 steps): the MPRT and
random-logit fast paths use them (metrics/quantus_randomisation.py; tested against the reference).
"""

from __future__ import annotations

import warnings

import numpy as np

CONSTANT_RULES = ("zero", "nan")  # a constant map's similarity: 0 when only one of the two is constant, or NaN


def _average_ranks(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties averaged as scipy.stats.rankdata) of each row's masked entries.

    Unmasked entries sort last (+inf) and get ranks above the masked ones (ignored by callers).
    Requires finite masked entries.
    """
    v = np.where(mask, v.astype(np.float64), np.inf)
    order = np.argsort(v, axis=1, kind="stable")
    s = np.take_along_axis(v, order, 1)
    n, d = s.shape
    idx = np.broadcast_to(np.arange(d), (n, d))
    first = np.ones((n, d), bool)
    first[:, 1:] = s[:, 1:] != s[:, :-1]
    last = np.ones((n, d), bool)
    last[:, :-1] = first[:, 1:]
    start = np.maximum.accumulate(np.where(first, idx, 0), axis=1)
    end = np.minimum.accumulate(np.where(last, idx, d - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((n, d))
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, 1)
    return ranks


def spearman_rows(a: np.ndarray, b: np.ndarray, mask: np.ndarray, constant: str = "nan") -> np.ndarray:
    """Spearman correlation of each row pair over its masked entries, float64 (N,).

    Equals `foreground_spearman(mask)(a, b)` (scipy.stats.spearmanr per row) with constant="nan":
    NaN for rows with fewer than 3 masked entries, a NaN among them, or a constant map. With
    constant="zero", a row where exactly one map is constant scores 0 (both constant: NaN).
    """
    if constant not in CONSTANT_RULES:
        raise ValueError(f"constant must be one of {CONSTANT_RULES}, got {constant!r}")
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    mask = np.asarray(mask, bool)
    if a.shape != mask.shape or b.shape != mask.shape:
        raise ValueError(f"foreground mask {mask.shape} does not match maps {a.shape} / {b.shape}")
    out = np.full(len(a), np.nan)
    if not len(a):
        return out
    count = mask.sum(1)

    def const(v):
        hi = np.where(mask, v, -np.inf).max(1)
        lo = np.where(mask, v, np.inf).min(1)
        return hi == lo  # False where a NaN is among them

    def has(v, test):
        return (test(v) & mask).any(1)

    enough = count >= 3
    ca, cb = const(a), const(b)
    nan = has(a, np.isnan) | has(b, np.isnan)
    if constant == "zero":
        out[enough & ~nan & (ca ^ cb)] = 0.0
    ok = enough & ~nan & ~ca & ~cb
    inf = ok & (has(a, np.isinf) | has(b, np.isinf))
    if inf.any():  # +-inf among the masked entries: scipy per row (never after normalisation)
        from scipy.stats import spearmanr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in np.flatnonzero(inf):
                out[i] = spearmanr(a[i, mask[i]], b[i, mask[i]])[0]
        ok &= ~inf
    if ok.any():
        m = mask[ok]
        n = count[ok].astype(np.float64)
        ra, rb = _average_ranks(a[ok], m), _average_ranks(b[ok], m)
        mean = ((n + 1) / 2)[:, None]  # the mean of ranks 1..n, exact
        da, db = np.where(m, ra - mean, 0.0), np.where(m, rb - mean, 0.0)
        f = 1.0 / (n - 1)  # np.cov multiplies by 1/(n-1); np.corrcoef divides by the two stddevs
        cab, caa, cbb = (da * db).sum(1) * f, (da * da).sum(1) * f, (db * db).sum(1) * f
        out[ok] = np.clip(cab / np.sqrt(cbb) / np.sqrt(caa), -1.0, 1.0)
    return out


def ssim_rows(a: np.ndarray, b: np.ndarray, shape: tuple) -> np.ndarray:
    """Per-row SSIM of each pair of rows as (C,H,W) images, float64 (N,): `_quantus_impl.ssim_2d(shape)`.

    skimage 0.22 structural_similarity defaults (7x7 uniform window, sample covariance,
    K1=0.01, K2=0.03, 3-pixel border cropped), data_range = max - min over both maps of the
    row, NaN where that range is <= 0; computed in the maps' float type (float32 here), as
    skimage does. Channels (C > 1) are averaged as skimage's channel_axis does.
    """
    from scipy.ndimage import uniform_filter

    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape != b.shape:
        raise ValueError(f"maps {a.shape} and {b.shape} differ")
    n = len(a)
    out = np.full(n, np.nan)
    if not n:
        return out
    ftype = np.float64 if a.dtype == np.float64 else np.float32  # skimage's _supported_float_type(im1)
    shape = tuple(shape)
    channels, img = (1, shape[1:]) if shape[0] == 1 else (shape[0], shape[1:])
    win = 7
    if any(s < win for s in img):
        raise ValueError("win_size exceeds image extent (skimage structural_similarity needs at least 7x7)")
    rng = (np.maximum(a.max(1), b.max(1)) - np.minimum(a.min(1), b.min(1))).astype(np.float64)
    ok = rng > 0
    if not ok.any():
        return out
    x = a[ok].astype(ftype, copy=False).reshape(-1, *img)  # (rows * channels, *img): one image each
    y = b[ok].astype(ftype, copy=False).reshape(x.shape)
    r = np.repeat(rng[ok], channels)
    size = (1,) + (win,) * (x.ndim - 1)
    NP = win ** (x.ndim - 1)
    cov_norm = NP / (NP - 1)
    c1 = ((0.01 * r) ** 2).astype(ftype).reshape(-1, *[1] * (x.ndim - 1))
    c2 = ((0.03 * r) ** 2).astype(ftype).reshape(c1.shape)
    ux = uniform_filter(x, size=size)
    uy = uniform_filter(y, size=size)
    uxx = uniform_filter(x * x, size=size)
    uyy = uniform_filter(y * y, size=size)
    uxy = uniform_filter(x * y, size=size)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    a1, a2 = 2 * ux * uy + c1, 2 * vxy + c2
    b1, b2 = ux ** 2 + uy ** 2 + c1, vx + vy + c2
    s = (a1 * a2) / (b1 * b2)
    pad = (win - 1) // 2
    crop = s[(slice(None),) + (slice(pad, -pad),) * (x.ndim - 1)]
    m = crop.reshape(len(crop), -1).mean(1, dtype=np.float64)
    if channels > 1:  # skimage stores each channel's mean in the float type and averages those
        m = m.astype(ftype).reshape(-1, channels).mean(1)
    out[ok] = m
    return out


# -- MPRT ----------------------------------------------------------------------------------------
