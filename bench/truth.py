"""Truth agreement: does a faithfulness metric rank the explanation methods as the ground truth does?

On a controlled dataset (bench.data.controlled) each image carries a mask of the pixels that carry
its label, and the localisation metrics (metrics/localisation.py, `loc_*`) score a map against it.
Per faithfulness metric on such a board (and per mode: predicted / true / contrast, separately):

- tau: Kendall tau-b between the ranking of the real methods (the random control left out) by the
  metric's mean and their ranking by the truth metric's mean (default loc_relevance_mass_accuracy).
  Both are oriented by their `higher_is_better` (the board's provenance), so tau = +1 means the
  metric puts the methods in the truth's order, best to best, and -1 the reverse.
- its 95% percentile-bootstrap interval over the images: test_index resampled with replacement,
  one resample shared by every method and metric of the mode, means and tau recomputed.
- verdict: "tracks the truth" (lower bound > 0), "contradicts the truth" (upper bound < 0), "not
  shown either way" (the interval covers 0), "no ranking" (tau undefined: fewer than 3 methods
  ranked by both, or one of the two rankings constant).

Which columns are faithfulness metrics: the metric registry records no family (a metric's `kind`
is the kind of its interval), so the rule is by name: the removal columns (del_morf_*, del_lerf_*,
srg_*, road_*, deletion_auc, insertion_auc, contour_patch) and the Quantus faithfulness metrics
(q_faithfulness_correlation, q_faithfulness_estimate, q_monotonicity_correlation,
q_pixel_flipping). The other localisation columns (loc_*, all of which need a mask) are scored
against the truth too, as a cross-check (family "localisation"); robustness, complexity and
randomisation metrics are not scored. NaN scores are dropped: a method's mean is over its finite
rows (on a resample: its finite resampled rows), and a method whose mean is NaN on either metric
is left out of that tau (n_methods says how many were ranked). The interval is over images only:
it says how sure the ranking of *these* methods is, not how it would be for other methods.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board

TRUTH = "loc_relevance_mass_accuracy"
CONTROL = "random"  # the random control method (as bench.meta and bench.tasks.attributions name it)
FAITHFULNESS_PREFIXES = ("del_morf_", "del_lerf_", "srg_", "road_")
FAITHFULNESS_NAMES = ("deletion_auc", "insertion_auc", "contour_patch", "q_faithfulness_correlation",
                      "q_faithfulness_estimate", "q_monotonicity_correlation", "q_pixel_flipping")
LOCALISATION_PREFIX = "loc_"
TRACKS, CONTRADICTS, NOT_SHOWN, NO_RANKING = ("tracks the truth", "contradicts the truth", "not shown either way",
                                              "no ranking")
COLUMNS = ["metric", "family", "mode", "truth", "tau", "tau_lo", "tau_hi", "verdict", "n_methods", "n_images"]


def family(metric: str) -> str:
    """"faithfulness", "localisation" or "" (scored against no truth), by the name rule above."""
    if metric.startswith(FAITHFULNESS_PREFIXES) or metric in FAITHFULNESS_NAMES:
        return "faithfulness"
    return "localisation" if metric.startswith(LOCALISATION_PREFIX) else ""


def has_truth(results, truth: str = TRUTH) -> bool:
    """Whether the board's attribution scores carry the truth metric (any finite value)."""
    i = results.instances
    return bool(len(i)) and bool(((i["task"] == board.ATTRIBUTIONS.kind) & (i["metric"] == truth)).any())


def verdict(tau: float, lo: float, hi: float) -> str:
    """The verdict of a tau and its 95% interval (see the module docstring)."""
    if not np.isfinite(tau):
        return NO_RANKING
    if np.isfinite(lo) and lo > 0:
        return TRACKS
    if np.isfinite(hi) and hi < 0:
        return CONTRADICTS
    return NOT_SHOWN


def tau_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall tau-b over the last axis (methods), batched over the leading ones; NaN entries left out.

    As bench.stats.kendall_tau: over the entries finite in both, NaN below 3 of them or when either
    ranking is constant there.

    Args:
        a, b: scores (..., k), the same shape.

    Returns:
        tau (...,).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    i, j = np.triu_indices(a.shape[-1], 1)
    ok = np.isfinite(a) & np.isfinite(b)
    pair = ok[..., i] & ok[..., j]
    with np.errstate(invalid="ignore"):
        sa = np.where(pair, np.sign(a[..., i] - a[..., j]), 0.0)
        sb = np.where(pair, np.sign(b[..., i] - b[..., j]), 0.0)
    den = np.sqrt(np.abs(sa).sum(-1) * np.abs(sb).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sa * sb).sum(-1) / den
    return np.where((ok.sum(-1) >= 3) & (den > 0), tau, np.nan)


def _cube(s: pd.DataFrame, metrics: list[str], up: dict[str, bool]) -> tuple[np.ndarray, int]:
    """images x real methods x metrics of one mode's scores (NaN where none), oriented higher = better."""
    s = s[s["method"] != CONTROL]
    wide = s.pivot_table(index="test_index", columns=["metric", "method"], values="value", aggfunc="first")
    methods = sorted(s["method"].unique())
    wide = wide.reindex(columns=pd.MultiIndex.from_product([metrics, methods]))
    x = wide.to_numpy(float).reshape(len(wide), len(metrics), len(methods)).transpose(0, 2, 1)
    return x * np.array([1.0 if up.get(m, True) else -1.0 for m in metrics]), len(methods)


def _means(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(draws, methods, metrics) means of x (images, methods, metrics) under per-image weights (draws, images)."""
    finite = np.isfinite(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.einsum("bi,imk->bmk", weights, np.where(finite, x, 0.0))
                / np.einsum("bi,imk->bmk", weights, finite.astype(float)))


def truth_agreement(results, truth: str = TRUTH, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per faithfulness (and other localisation) metric and mode: Kendall tau with the truth's ranking.

    Args:
        results: a board (bench.load) whose attribution scores carry `truth`.
        truth: the localisation metric taken as the ground truth (higher_is_better from the board).
        n_boot: bootstrap resamples of the images (0: no interval).
        seed: seeds the resampling.

    Returns:
        One row per (metric, mode): COLUMNS; empty (with COLUMNS) when the board has no `truth`.
    """
    i = results.instances
    i = i[i["task"] == board.ATTRIBUTIONS.kind]
    metrics = sorted(m for m in i["metric"].unique() if family(m) and m != truth)
    up = board.directions(results.provenance.values())
    i = i[i["metric"].isin([truth, *metrics])]
    rows = []
    for mode, s in i.groupby(i["mode"].fillna(""), sort=True):
        if truth not in set(s["metric"]) or not metrics:
            continue
        x, _ = _cube(s, [truth, *metrics], up)
        full = _means(x, np.ones((1, len(x))))[0]
        tau = tau_b(full[:, 1:].T, np.broadcast_to(full[:, 0], full[:, 1:].T.shape))
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(x), (n_boot if len(x) >= 2 else 0, len(x)))
        weights = np.stack([np.bincount(p, minlength=len(x)) for p in picks]) if len(picks) else np.zeros((0, len(x)))
        boot = _means(x, weights.astype(float))  # (draws, methods, 1 + metrics)
        draws = tau_b(boot[:, :, 1:].transpose(0, 2, 1), np.repeat(boot[:, :, :1], len(metrics), 2).transpose(0, 2, 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column of draws: NaN, said by the verdict
            lo, hi = (np.nanpercentile(draws, [2.5, 97.5], axis=0) if len(draws)
                      else np.full((2, len(metrics)), np.nan))
        finite = np.isfinite(x)
        for k, metric in enumerate(metrics):
            ranked = np.isfinite(full[:, 0]) & np.isfinite(full[:, k + 1])
            images = (finite[:, :, 0] & finite[:, :, k + 1]).any(axis=1)
            if not images.any():
                continue  # the metric was not scored on this mode
            rows.append(dict(metric=metric, family=family(metric), mode=mode, truth=truth, tau=tau[k], tau_lo=lo[k],
                             tau_hi=hi[k], verdict=verdict(tau[k], lo[k], hi[k]), n_methods=int(ranked.sum()),
                             n_images=int(images.sum())))
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = out["family"].map({"faithfulness": 0, "localisation": 1})
    return out.assign(_o=order, _t=-out["tau"].fillna(-2)).sort_values(["_o", "mode", "_t", "metric"]) \
              .drop(columns=["_o", "_t"]).reset_index(drop=True)



def _what(truth: str) -> str:
    return truth.removeprefix(LOCALISATION_PREFIX).replace("_", " ")


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else "–"


def reasons(table: pd.DataFrame) -> dict[str, str]:
    """metric -> the flag of a faithfulness metric that contradicts the truth (its modes joined by "; ")."""
    several = table["mode"].nunique() > 1
    out: dict[str, list[str]] = {}
    for r in table[(table["family"] == "faithfulness") & (table["verdict"] == CONTRADICTS)].itertuples():
        mode = f" in mode {r.mode}" if several else ""
        out.setdefault(r.metric, []).append(f"contradicts the ground truth{mode} (tau {r.tau:.2f} "
                                            f"{_interval(r.tau_lo, r.tau_hi)} vs {_what(r.truth)}, "
                                            f"{r.n_methods} methods)")
    return {m: "; ".join(v) for m, v in out.items()}


SECTION = "Which metric tracks the truth"
LEGEND = ("On a dataset with a ground-truth mask, does each faithfulness metric rank the real methods (random left "
          "out) as `{truth}` does (bench/truth.py)? On the first board, per mode. **family**: faithfulness (the "
          "removal columns and the Quantus faithfulness metrics, by name) or localisation (the other mask metrics, "
          "a cross-check). **mode**: the mode explained (predicted / true / contrast), each on its own. **truth**: "
          "the localisation metric taken as the ground truth. **tau**: Kendall tau-b between the ranking of the "
          "methods by the metric's mean and by the truth's mean, both oriented by their direction, so +1 = the same "
          "order, best to best, and -1 = reversed. **tau_lo**: 2.5% percentile of tau over bootstrap resamples of "
          "the images (one resample shared by every method and metric, means and tau recomputed); **tau_hi**: the "
          "97.5% percentile (shown as the 95% interval). **verdict**: tracks the truth (interval above 0), "
          "contradicts the truth (interval below 0: flagged under the boards), not shown either way (the interval "
          "covers 0), no ranking (fewer than 3 methods ranked by both, or a constant ranking). **n_methods**: real "
          "methods ranked by both (a method's mean is over its finite scores; one with none is left out); "
          "**n_images**: images scored by both (n in the table: methods x images). **caught_by_other_flags**: "
          "whether the separation or stability flags already flag the metric; for a metric that does not track "
          "the truth, no means only the ground truth catches it.")


def section(table: pd.DataFrame) -> list[str]:
    """The Markdown section of meta.md: how to read it, the table (metric, tau, interval, verdict, n), the figure."""
    truth = table["truth"].iloc[0]
    several = table["mode"].nunique() > 1
    lines = [f"## {SECTION}", "", LEGEND.format(truth=truth), ""]
    head = ["metric", *(["mode"] if several else []), "family", "tau", "95% interval", "verdict", "n",
            "caught_by_other_flags"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.itertuples():
        caught = getattr(r, "caught_by_other_flags", None)
        cells = [f"`{r.metric}`", *([str(r.mode)] if several else []), r.family,
                 f"{r.tau:.2f}" if np.isfinite(r.tau) else "–", _interval(r.tau_lo, r.tau_hi), r.verdict,
                 f"{r.n_methods} x {r.n_images}", "–" if caught is None else ("yes" if caught else "no")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + ["", "![truth agreement](meta_truth.png)", ""]


COLOURS = {TRACKS: "#0b5cad", CONTRADICTS: "#a40000", NOT_SHOWN: "#777777", NO_RANKING: "#bbbbbb"}


def plot(table: pd.DataFrame, path: Path) -> Path:
    """meta_truth.png: per metric (and mode) its tau with the 95% interval, a vertical line at 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    several = table["mode"].nunique() > 1
    t = table.iloc[::-1]
    labels = [f"{r.metric} ({r.mode})" if several else r.metric for r in t.itertuples()]
    height = 0.3 * len(t) + 1.8
    fig, ax = plt.subplots(figsize=(6.5, height))
    for y, r in enumerate(t.itertuples()):
        c = COLOURS[r.verdict]
        if np.isfinite(r.tau_lo) and np.isfinite(r.tau_hi):
            ax.plot([r.tau_lo, r.tau_hi], [y, y], color=c, lw=2)
        if np.isfinite(r.tau):
            ax.plot([r.tau], [y], "o", color=c, ms=5)
    ax.axvline(0, color="#1b1b1b", lw=1)
    n_loc = int((t["family"] == "localisation").sum())
    if 0 < n_loc < len(t):  # the localisation cross-check sits below the faithfulness metrics
        ax.axhline(n_loc - 0.5, color="#999999", lw=0.8, ls="--")
    ax.set_yticks(range(len(t)), labels, fontsize=7)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-0.6, len(t) - 0.4)
    ax.set_xlabel(f"Kendall tau with the ranking by {table['truth'].iloc[0]} (95% bootstrap interval)", fontsize=8)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in COLOURS.items()
               if v in set(table["verdict"])]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=len(handles), frameon=False)
    ax.set_title("Does each metric rank the methods as the ground truth does?", fontsize=9)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
