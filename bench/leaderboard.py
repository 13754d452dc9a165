"""Aggregate per-instance scores into a leaderboard table and its Markdown (bench.board writes them).

Each cell is a mean with the 95% interval that fits its metric's kind (bench.stats: Wilson
for proportions, BCa bootstrap for means, none for a constant sample, n < 2 or a timing
column), its n and its interval method (`<metric>_ci`). Distance-like metrics marked
`valid_only` are aggregated over valid counterfactuals only (their n says how many). NaN/inf
scores are counted in `<metric>_nan`, never averaged. In every column the best entry among
those with n >= MIN_BEST_N is compared with the runner-up by a paired sign-flip test on the
instances both have (`<metric>_p_next`); the table's tests are one family, Holm-corrected
(`<metric>_p_next_holm`); when the adjusted p >= 0.05 the Markdown marks the best value "≈".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board
from bench.board import finite, fmt, fmt_cell
from bench.stats import ALPHA, METHODS, cell, holm, paired_pvalue

SCHEMA_VERSION = "2"  # 2: intervals by kind (<metric>_ci), Holm-adjusted best marks, <metric>_best
MIN_BEST_N = 10  # a row scored on fewer instances is never marked best


@dataclass
class MetricMeta:
    name: str
    higher_is_better: bool
    valid_only: bool
    definition: str
    version: str
    kind: str = "mean"  # "mean" | "proportion" | "timing": decides the interval (bench.stats)


@dataclass
class EntryScores:
    """One leaderboard row's raw material: per-instance scores aligned to `index`."""

    method: str
    mode: str
    version: str
    index: np.ndarray  # test indices of the instances this entry ran on
    valid: np.ndarray  # bool per instance (validity for CF; all True for attributions)
    scores: dict = field(default_factory=dict)  # metric -> float64 array aligned to index
    n_errors: int = 0  # size of the full error set (so a subset is visible)
    metric_n: dict = field(default_factory=dict)  # metric -> first n instances it was scored on


def values(e: EntryScores, m: MetricMeta) -> tuple[np.ndarray, np.ndarray]:
    """The scores a cell aggregates and their test indices (its metric's subset, valid rows if valid_only)."""
    n = e.metric_n.get(m.name, len(e.index))
    v, idx, valid = e.scores[m.name][:n], e.index[:n], e.valid[:n]
    if m.valid_only:
        v, idx = v[valid], idx[valid]
    return v, idx


def aggregate(entries: list[EntryScores], metrics: list[MetricMeta], n_boot: int = 1000,
              seed: int = 0, limited: bool = False) -> pd.DataFrame:
    """One row per entry: n, subset flag, and mean / interval / n / NaN count / method per metric."""
    rows = []
    for e in entries:
        row = dict(method=e.method, mode=e.mode, version=e.version, n=len(e.index),
                   n_errors=e.n_errors, subset=len(e.index) < e.n_errors)
        for m in metrics:
            if m.name not in e.scores:
                continue
            c = cell(values(e, m)[0], m.kind, n_boot=n_boot, seed=seed)
            row.update({m.name: c.mean, f"{m.name}_lo": c.lo, f"{m.name}_hi": c.hi,
                        f"{m.name}_n": c.n, f"{m.name}_nan": c.n_nan, f"{m.name}_ci": c.method})
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["method", "mode", "version", "n", "n_errors", "subset"])
    tested = []
    for m in metrics:
        if m.name in df and m.kind != "timing":
            df[f"{m.name}_best"] = False
            df[f"{m.name}_p_next"] = np.nan
            best, p = best_vs_next(entries, m, df)
            if best is not None:
                df.loc[best, f"{m.name}_best"] = True
                df.loc[best, f"{m.name}_p_next"] = p
                tested.append((m.name, best, p))
    adjusted = holm([p for _, _, p in tested])
    for m in metrics:
        if f"{m.name}_p_next" in df:
            df[f"{m.name}_p_next_holm"] = np.nan
    for (name, best, _), q in zip(tested, adjusted):
        df.loc[best, f"{name}_p_next_holm"] = q
    df["not_for_publication"] = limited
    df["schema_version"] = SCHEMA_VERSION
    return df


def best_vs_next(entries, m: MetricMeta, df: pd.DataFrame):
    """(row of the best entry among those with n >= MIN_BEST_N, paired p-value against the runner-up).

    The test runs on the instances both rows share (valid ones for valid_only metrics); p is
    NaN when they share fewer than 2, and (None, None) when fewer than two rows qualify (a
    lone row is not "best" of anything).
    """
    means = df[m.name].to_numpy(dtype=float)
    n = df[f"{m.name}_n"].to_numpy(dtype=float)
    order = [i for i in np.argsort(-means if m.higher_is_better else means, kind="stable")
             if np.isfinite(means[i]) and n[i] >= MIN_BEST_N]
    if len(order) < 2:
        return None, None
    (a_v, a_i), (b_v, b_i) = (values(entries[order[0]], m), values(entries[order[1]], m))
    common, ia, ib = np.intersect1d(a_i, b_i, return_indices=True)
    if len(common) < 2:
        return order[0], float("nan")
    return order[0], paired_pvalue(a_v[ia], b_v[ib])


def legend(df: pd.DataFrame, shown: list[MetricMeta]) -> list[str]:
    """The lines under a table that say which interval each column uses and which family the best marks form."""
    used = sorted({str(v) for m in shown for v in df.get(f"{m.name}_ci", pd.Series(dtype=str)).dropna()
                   if str(v) in METHODS})
    n_tests = int(sum(df[f"{m.name}_p_next"].notna().sum() for m in shown if f"{m.name}_p_next" in df))
    return ["Cells: mean [95% interval]; the interval by the kind of the column: "
            + "; ".join(f"**{u}**: {METHODS[u]}" for u in used) + ". (n=k) where a cell aggregates k instances "
            "and not the row's n. ↑ higher is better, ↓ lower is better.",
            f"Best marks: the best row of a column among rows with n ≥ {MIN_BEST_N} (when at least two qualify) is **bold**; it is tested "
            "against the runner-up with a paired sign-flip test on the instances both share; the table's "
            f"{n_tests} such tests are one family, Holm-corrected. ≈ marks a best value whose adjusted p ≥ "
            f"{ALPHA} (or that shares fewer than 2 instances with the runner-up): not shown to be better."]


def to_markdown(df: pd.DataFrame, metrics: list[MetricMeta], title: str, notes: list[str]) -> str:
    """A Markdown table: value [95% interval] (n) per cell, arrows for direction, legend and notes below."""
    shown = [m for m in metrics if m.name in df]
    with_mode = bool(df["mode"].astype(str).str.len().any())
    head = ["method"] + (["mode"] if with_mode else []) + ["n"] + [f"{m.name} {'↑' if m.higher_is_better else '↓'}" for m in shown]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        n = f"{r['n']}/{r['n_errors']}" + (" (subset)" if r["subset"] else "")
        cells = [str(r["method"])] + ([str(r["mode"])] if with_mode else []) + [n]
        for m in shown:
            text = fmt_cell(r, m.name, r["n"])
            if bool(r.get(f"{m.name}_best", False)):
                q = r.get(f"{m.name}_p_next_holm", np.nan)
                text = f"**{text}**" if finite(q) and q < ALPHA else f"≈ **{text}**"
            if finite(r.get(f"{m.name}_nan", 0)) and r.get(f"{m.name}_nan", 0) > 0:
                text += f" ({int(r[f'{m.name}_nan'])} NaN)"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *legend(df, shown), ""]
    lines += [f"- {m.name} (v{m.version}): {m.definition}" + (" — valid counterfactuals only." if m.valid_only else "")
              for m in shown]
    lines += [""] + [f"{n}" for n in notes]
    return "\n".join(lines) + "\n"


def statistics_record(n_boot: int, seed: int) -> dict:
    """How the board's statistics were made (its provenance `statistics`)."""
    return dict(schema_version=SCHEMA_VERSION, intervals=METHODS, n_bootstrap=n_boot, seed=seed, alpha=ALPHA,
                min_best_n=MIN_BEST_N, best_vs_runner_up="paired sign-flip test on shared instances; "
                "the table's tests one family, Holm", vs_random="paired sign-flip test on the headline deletion "
                "(del_morf_zeros; deletion_auc on a board without it) per (method, mode); the board's rows one family, Holm")


def headline(folder: Path) -> str:
    """The run's headline tables as plain text: method, n, each table's headline metrics as mean [95% CI]."""
    blocks = []
    for t in board.TABLES:
        path = t.csv(folder)
        if not path.exists():
            continue
        df = board.read_table(path).fillna({"mode": ""})
        shown = [m for m in t.headline if m in df.columns]
        rows = [["method", "n", *shown]]
        for _, r in df.iterrows():
            name = r["method"] + (f"/{r['mode']}" if r["mode"] else "")
            cells = [fmt_cell(r, m, r["n"]) if f"{m}_lo" in df.columns else fmt(r[m]) for m in shown]
            rows.append([name, str(int(r["n"])), *cells])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        blocks.append(f"{t.stem}:\n" + "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths))
                                                for row in rows))
    return "\n\n".join(blocks)
