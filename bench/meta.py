"""Meta-evaluation: how far can each metric be trusted to rank explanation methods?

From one or more boards of the same task (e.g. one model trained with several seeds), per metric:

- separation (attributions): does it tell each real method from the random control? Paired
  per-error differences, signed so that > 0 means "better than random"; effect size d_z =
  mean / sd of the differences, and the paired sign-flip p-value (bench.stats). A metric's
  tests (every method on every board) are one family: `p_bh` (Benjamini-Hochberg, which the
  separated share uses) and `p_holm` (Holm) are published beside the raw `p`.
- agreement: Kendall tau-b between the method rankings two metrics produce (first board),
  over the real methods only (the random control, always last, would inflate it), with a 95%
  percentile-bootstrap interval over the errors.
- bootstrap stability: mean Kendall tau between the ranking on a bootstrap resample of the
  errors and the ranking on all of them (real methods only).
- seed stability: mean pairwise Kendall tau between the rankings of different boards.

Rankings use each method's mean score, oriented so that higher is better. A rank stability
over fewer than MIN_RANKED methods is not reported (with 3 methods tau can only be ±1/3 or ±1).

Flags (`flag` column, `flagged`, and `annotate` for a board's Markdown): an attribution metric
that separates fewer than half of the real methods from the random control, and any metric
whose method ranking keeps a Kendall tau below 0.5 across seeds (when several boards are
given) or across bootstrap resamples of the errors. On a board with a ground-truth mask (the
first board carries bench.truth.TRUTH), the truth agreement (bench.truth) too: a faithfulness
metric whose ranking contradicts the truth's is flagged, and the `truth` table says whether the
flags above had already caught each metric (`caught_by_other_flags`).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from bench import atomic, board, truth
from bench.board import FLAGS_BEGIN, FLAGS_END
from bench.stats import bh, holm, kendall_tau, paired_pvalue

CF, ATTR = board.COUNTERFACTUALS, board.ATTRIBUTIONS

CONTROL = "random"
MIN_RANKED = 5  # rank stability over fewer methods is not reported (tau's null SD is 0.41 at 5, 0.49 at 4)
MIN_SEPARATED = 0.5  # share of real methods a metric must tell from the random control
MIN_TAU = 0.5  # rank stability (Kendall tau) below this is flagged
TASKS = (ATTR.stem, CF.stem)  # the per-task tables of `summary`, in the order meta.md lists them


def _metrics(results, task: str) -> list[str]:
    i = results.instances
    return sorted(i.loc[i["task"] == task, "metric"].unique())


def _wide(results, task: str, metric: str) -> pd.DataFrame:
    """errors x methods of one metric's per-instance scores, oriented higher = better."""
    i = results.instances
    s = i[(i["task"] == task) & (i["metric"] == metric)]
    s = s.assign(method=s["method"] + np.where(s["mode"].fillna("") != "", "/" + s["mode"].fillna(""), ""))
    wide = s.pivot_table(index="test_index", columns="method", values="value", aggfunc="first")
    return wide if board.directions(results.provenance.values()).get(metric, True) else -wide


def _real(wide: pd.DataFrame) -> pd.DataFrame:
    """The real methods' columns (the random control left out)."""
    return wide[[c for c in wide.columns if c.split("/")[0] != CONTROL]]


def _tau(a: pd.Series, b: pd.Series) -> float:
    common = a.dropna().index.intersection(b.dropna().index)
    return kendall_tau(a[common].to_numpy(float), b[common].to_numpy(float))


def no_control(metric: str) -> str:
    """Why the random control means nothing for a registered metric ("" when it is a meaningful floor)."""
    from metrics import ATTR_METRICS

    return getattr(ATTR_METRICS.get(metric), "control", "") if metric in ATTR_METRICS.names() else ""


def separation(results, task: str = ATTR.kind) -> pd.DataFrame:
    """Per metric and method: effect size and p-value of (method - random control), signed better > 0."""
    rows = []
    for metric in _metrics(results, task):
        wide = _wide(results, task, metric)
        controls = [c for c in wide.columns if c.split("/")[0] == CONTROL]
        for ctl in controls:
            mode = ctl.partition("/")[2]
            for method in wide.columns:
                if method == ctl or method.partition("/")[2] != mode:
                    continue
                d = (wide[method] - wide[ctl]).dropna()
                sd = d.std(ddof=1) if len(d) > 1 else np.nan
                rows.append(dict(metric=metric, method=method, n=len(d), mean_diff=d.mean(),
                                 d_z=d.mean() / sd if sd and np.isfinite(sd) and sd > 0 else np.nan,
                                 p=paired_pvalue(wide.loc[d.index, method], wide.loc[d.index, ctl])))
    return pd.DataFrame(rows)


def corrected(sep: pd.DataFrame) -> pd.DataFrame:
    """Holm and Benjamini-Hochberg adjusted p per metric (family: every method on every board), and `separated`."""
    sep = sep.copy()
    sep["p_holm"], sep["p_bh"] = np.nan, np.nan
    for _, idx in sep.groupby("metric").groups.items():
        sep.loc[idx, "p_holm"] = holm(sep.loc[idx, "p"].to_numpy(float))
        sep.loc[idx, "p_bh"] = bh(sep.loc[idx, "p"].to_numpy(float))
    sep["separated"] = (sep["mean_diff"] > 0) & (sep["p_bh"] < 0.05)
    sep["separated_holm"] = (sep["mean_diff"] > 0) & (sep["p_holm"] < 0.05)
    sep["separated_raw"] = (sep["mean_diff"] > 0) & (sep["p"] < 0.05)
    return sep


def _tau_matrix(means: dict[str, pd.Series], metrics: list[str]) -> np.ndarray:
    out = np.full((len(metrics), len(metrics)), np.nan)
    for (i, a), (j, b) in itertools.combinations_with_replacement(enumerate(metrics), 2):
        out[i, j] = out[j, i] = _tau(means[a], means[b])
    return out


def agreement(results, task: str = ATTR.kind, n_boot: int = 200, seed: int = 0) -> dict[str, pd.DataFrame]:
    """metric x metric Kendall tau-b of the real methods' rankings, and its bootstrap interval over the errors.

    Returns {"agreement": tau, "agreement_lo": 2.5% and "agreement_hi": 97.5% percentiles over
    n_boot resamples of the errors (one resample of test indices shared by all metrics)}.
    """
    metrics = _metrics(results, task)
    wides = {m: _real(_wide(results, task, m)) for m in metrics}
    tau = _tau_matrix({m: w.mean() for m, w in wides.items()}, metrics)
    pool = np.array(sorted(set().union(*(w.index for w in wides.values()))))
    rng, draws = np.random.default_rng(seed), []
    for _ in range(n_boot if len(pool) >= 2 else 0):
        pick = pool[rng.integers(0, len(pool), len(pool))]
        draws.append(_tau_matrix({m: w.reindex(pick).mean() for m, w in wides.items()}, metrics))
    frame = lambda a: pd.DataFrame(a, index=metrics, columns=metrics)  # noqa: E731
    if draws:
        with np.errstate(all="ignore"):
            lo, hi = np.nanpercentile(np.stack(draws), [2.5, 97.5], axis=0)
    else:
        lo = hi = np.full_like(tau, np.nan)
    return dict(agreement=frame(tau), agreement_lo=frame(lo), agreement_hi=frame(hi))


def bootstrap_stability(results, task: str, n_boot: int = 200, seed: int = 0) -> pd.Series:
    """metric -> mean Kendall tau between bootstrap-resample rankings and the full ranking."""
    rng, out = np.random.default_rng(seed), {}
    for metric in _metrics(results, task):
        wide = _real(_wide(results, task, metric))
        if wide.shape[1] < MIN_RANKED:
            out[metric] = float("nan")
            continue
        full, taus = wide.mean(), []
        for _ in range(n_boot):
            sample = wide.iloc[rng.integers(0, len(wide), len(wide))]
            taus.append(_tau(sample.mean(), full))
        out[metric] = float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")
    return pd.Series(out, name="bootstrap_tau")


def seed_stability(boards: list, task: str) -> pd.Series:
    """metric -> mean pairwise Kendall tau between the rankings of different boards (seeds)."""
    if len(boards) < 2:
        return pd.Series(dtype=float, name="seed_tau")
    metrics = sorted(set.intersection(*(set(_metrics(b, task)) for b in boards)))
    out = {}
    for metric in metrics:
        means = [_real(_wide(b, task, metric)).mean() for b in boards]
        if min(len(m.dropna()) for m in means) < MIN_RANKED:
            out[metric] = float("nan")
            continue
        out[metric] = float(np.nanmean([_tau(a, b) for a, b in itertools.combinations(means, 2)]))
    return pd.Series(out, name="seed_tau")


def summary(boards: list, n_boot: int = 200) -> dict[str, pd.DataFrame]:
    """The meta-evaluation tables of one or more boards of one model (several seeds)."""
    out = {}
    sep = pd.concat([separation(b).assign(board=i) for i, b in enumerate(boards)], ignore_index=True)
    if len(sep):
        sep = corrected(sep)
        g = sep.groupby("metric")
        attr = pd.DataFrame(dict(methods=g["method"].nunique(), tests=g["p"].count(),
                                 separated_share=g["separated"].mean(),
                                 separated_share_holm=g["separated_holm"].mean(),
                                 separated_share_raw=g["separated_raw"].mean(), median_d_z=g["d_z"].median()))
        attr["bootstrap_tau"] = pd.concat([bootstrap_stability(b, ATTR.kind, n_boot) for b in boards],
                                          axis=1).mean(axis=1)
        attr["seed_tau"] = seed_stability(boards, ATTR.kind)
        attr["no_control"] = [no_control(m) for m in attr.index]
        out[ATTR.stem] = attr.reset_index()
        out["separation"] = sep
        out.update(agreement(boards[0], n_boot=n_boot))
    cf = pd.concat([bootstrap_stability(b, CF.kind, n_boot) for b in boards], axis=1).mean(axis=1)
    if len(cf):
        common = set.intersection(*(set(b.instances.loc[b.instances["task"] == CF.kind, "method"]) for b in boards))
        per_board = "/".join(str(b.instances.loc[b.instances["task"] == CF.kind, "method"].nunique())
                             for b in boards)
        out[CF.stem] = pd.DataFrame(dict(methods=len(common), methods_per_board=per_board,
                                         bootstrap_tau=cf, seed_tau=seed_stability(boards, CF.kind))
                                    ).rename_axis("metric").reset_index()
    for name in TASKS:
        if name in out:
            out[name]["flag"] = [_flag(r) for r in out[name].to_dict("records")]
    if truth.has_truth(boards[0]):
        out["truth"] = _truth(out, truth.truth_agreement(boards[0], n_boot=n_boot))
    return out


def _truth(out: dict[str, pd.DataFrame], table: pd.DataFrame) -> pd.DataFrame:
    """The truth table with `caught_by_other_flags`; its contradictions appended to the attribution flags."""
    attr = out.get(ATTR.stem)
    other = dict(zip(attr["metric"], attr["flag"])) if attr is not None else {}
    table = table.assign(caught_by_other_flags=[bool(other.get(m)) for m in table["metric"]])
    if attr is not None:
        why = truth.reasons(table)
        attr["flag"] = ["; ".join(filter(None, [f, why.get(m, "")])) for m, f in zip(attr["metric"], attr["flag"])]
    return table


def _flag(row: dict) -> str:
    """Plain-words reasons not to trust a metric's ranking ("" when none)."""
    reasons = []
    share = row.get("separated_share")
    if share is not None and np.isfinite(share) and share < MIN_SEPARATED:
        reasons.append(f"separates {share:.0%} of methods from random (BH-corrected)")
    holm_share = row.get("separated_share_holm")
    if holm_share is not None and np.isfinite(holm_share) and holm_share < MIN_SEPARATED <= (share or 0):
        reasons.append(f"separates only {holm_share:.0%} after Holm's family-wise correction (too few errors scored)")
    for key, what in (("seed_tau", "seeds"), ("bootstrap_tau", "bootstrap resamples")):
        tau = row.get(key)
        if tau is not None and np.isfinite(tau) and tau < MIN_TAU:
            reasons.append(f"ranking tau {tau:.2f} across {what}")
    return "; ".join(reasons)


def flagged(tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, str]]:
    """A task's table stem (bench.board) -> {metric: reasons} of the flagged metrics."""
    return {name: {r["metric"]: r["flag"] for r in tables[name].to_dict("records") if r["flag"]}
            for name in TASKS if name in tables}


def annotate(board_dir: Path, tables: dict[str, pd.DataFrame], source: str) -> list[Path]:
    """Write the flags under each leaderboard table of `board_dir` (replacing an earlier block).

    The table itself is untouched; the block names `source` (where the meta-evaluation lives).
    """
    paths = []
    for name, reasons in flagged(tables).items():
        md = board.table(name).md(board_dir)
        if not md.exists():
            continue
        text = md.read_text()
        if FLAGS_BEGIN in text:
            text = text[:text.index(FLAGS_BEGIN)].rstrip("\n") + text[text.index(FLAGS_END) + len(FLAGS_END):]
        lines = [f"- `{m}`: {why}" for m, why in sorted(reasons.items())] or ["- none"]
        block = "\n".join([FLAGS_BEGIN, f"**Flagged by the meta-evaluation** ({source}): do not rank methods by "
                            "these metrics alone.", "", *lines, FLAGS_END])
        paths.append(atomic.write_text(md, text.rstrip("\n") + "\n\n" + block + "\n"))
    return paths


def write(tables: dict[str, pd.DataFrame], out_dir: Path, title: str) -> list[Path]:
    """meta_<table>.csv per table of `summary`, meta.md and the agreement heatmap."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables.items():
        paths.append(atomic.write_text(out_dir / f"meta_{name}.csv",
                                       df.to_csv(index=name.startswith("agreement"), float_format="%.4g")))
    lines = [f"# Meta-evaluation: {title}", "", LEGEND, ""]
    for name in TASKS:
        if name in tables:
            lines += [f"## {name}", "", _markdown(tables[name].drop(columns=["no_control"], errors="ignore")), ""]
    if ATTR.stem in tables and "no_control" in tables[ATTR.stem]:
        none = tables[ATTR.stem].loc[tables[ATTR.stem]["no_control"].fillna("") != "", ["metric", "no_control"]]
        if len(none):
            lines += ["## Metrics without a meaningful control", "", "Their separation from the random control "
                      "above is no test of them:", ""]
            lines += [f"- `{r.metric}`: {r.no_control}" for r in none.itertuples()] + [""]
    if "truth" in tables and len(tables["truth"]):
        lines += truth.section(tables["truth"])
        paths.append(truth.plot(tables["truth"], out_dir / "meta_truth.png"))
    flags = flagged(tables)
    if any(flags.values()):
        also = ", or a method ranking that contradicts the ground truth's" if "truth" in tables else ""
        lines += ["## Flagged metrics", "", f"Separation below {MIN_SEPARATED:.0%} of methods, or a ranking "
                  f"Kendall tau below {MIN_TAU} across seeds or bootstrap resamples{also}:", ""]
        lines += [f"- {task} `{m}`: {why}" for task, f in flags.items() for m, why in sorted(f.items())] + [""]
    if "agreement" in tables:
        paths.append(_heatmap(tables["agreement"], out_dir / "meta_agreement.png"))
        lines += ["![agreement](meta_agreement.png)", ""]
    paths.append(atomic.write_text(out_dir / "meta.md", "\n".join(lines) + "\n"))
    return paths


LEGEND = ("How far each metric can be trusted to rank the methods (bench/meta.py). **methods**: the real "
          "methods compared (attributions: each against the random control; counterfactuals: the solvers every "
          "board ran). **tests**: (method, board) pairs tested against the random control, one family per metric. "
          "**separated_share**: share of those pairs where the method beats the random control on this metric "
          "(paired sign-flip test over the errors, Benjamini-Hochberg-adjusted p < 0.05 within the metric's "
          "family); **separated_share_holm**: the same with Holm's family-wise correction; "
          "**separated_share_raw**: uncorrected p < 0.05 (for comparison with earlier boards). A metric scored on "
          "10 errors has a sign-flip p floor of 2/2^10 ≈ 0.002 per test. **median_d_z**: median paired effect size "
          "(mean difference / its SD, > 0 = better than random). **bootstrap_tau**: mean Kendall tau between the "
          "ranking of the real methods (random left out) on a bootstrap resample of the errors and on all of them "
          "(mean over the boards with enough methods; counterfactuals: `methods_per_board` says how many "
          "solvers each board ran). **seed_tau**: mean Kendall tau between the rankings of every two boards (training "
          "seeds), over the real methods they share. **no_control**: why no control means anything for the "
          "metric (`metric(control=...)`; empty where the random control is a meaningful floor), listed under "
          f"\"Metrics without a meaningful control\". Rank stabilities over fewer than {MIN_RANKED} methods are not "
          "reported (–): with 3 methods tau can only be ±1/3 or ±1. The heatmap: Kendall tau-b between the "
          "rankings two metrics give to the real methods on the first board; `meta_agreement_lo.csv` / "
          "`meta_agreement_hi.csv` hold its 95% percentile-bootstrap interval over the errors.")


def _markdown(df: pd.DataFrame) -> str:
    cell = lambda v: (f"{v:.3f}" if np.isfinite(v) else "–") if isinstance(v, float) else str(v)  # noqa: E731
    rows = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(rows + ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)])


def _heatmap(tau: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(0.5 * len(tau) + 3, 0.5 * len(tau) + 2))
    im = ax.imshow(tau.to_numpy(float), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(tau)), tau.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(tau)), tau.index, fontsize=7)
    for (i, j), v in np.ndenumerate(tau.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=5)
    fig.colorbar(im, ax=ax, label="Kendall tau of method rankings")
    ax.set_title("Metric agreement on the ranking of attribution methods", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
