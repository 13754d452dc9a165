"""Aggregate per-instance scores into leaderboards: CSV + Markdown + provenance JSON.

Each cell is a mean with a seeded 95% percentile-bootstrap CI and its n. Distance-like
metrics marked `valid_only` are aggregated over valid counterfactuals only (their n says
how many). NaN/inf scores are counted in `<metric>_nan`, never averaged. In every column
the best entry is compared with the runner-up by a paired sign-flip test on the instances
both have; when p >= 0.05 the Markdown marks the best value with "≈" (not significant).
Files are written to temporaries and renamed, so a failure never leaves a half-written
leaderboard or destroys the previous one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import atomic
from bench.stats import bootstrap_ci, paired_pvalue

SCHEMA_VERSION = "1"
ALPHA = 0.05


@dataclass
class MetricMeta:
    name: str
    higher_is_better: bool
    valid_only: bool
    definition: str
    version: str


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


def _values(e: EntryScores, m: MetricMeta) -> tuple[np.ndarray, np.ndarray]:
    n = e.metric_n.get(m.name, len(e.index))
    v, idx, valid = e.scores[m.name][:n], e.index[:n], e.valid[:n]
    if m.valid_only:
        v, idx = v[valid], idx[valid]
    return v, idx


def aggregate(entries: list[EntryScores], metrics: list[MetricMeta], n_boot: int = 1000,
              seed: int = 0, limited: bool = False) -> pd.DataFrame:
    """One row per entry: n, subset flag, and mean / CI / n / NaN count per metric."""
    rows = []
    for e in entries:
        row = dict(method=e.method, mode=e.mode, version=e.version, n=len(e.index),
                   n_errors=e.n_errors, subset=len(e.index) < e.n_errors)
        for m in metrics:
            if m.name not in e.scores:
                continue
            cell = bootstrap_ci(_values(e, m)[0], n_boot=n_boot, seed=seed)
            row.update({m.name: cell.mean, f"{m.name}_lo": cell.lo, f"{m.name}_hi": cell.hi,
                        f"{m.name}_n": cell.n, f"{m.name}_nan": cell.n_nan})
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["method", "mode", "version", "n", "n_errors", "subset"])
    for m in metrics:
        if m.name in df:
            df[f"{m.name}_p_next"] = np.nan
            best, p = _best_vs_next(entries, m, df)
            if best is not None:
                df.loc[best, f"{m.name}_p_next"] = p
    df["not_for_publication"] = limited
    df["schema_version"] = SCHEMA_VERSION
    return df


def _best_vs_next(entries, m: MetricMeta, df: pd.DataFrame):
    means = df[m.name].to_numpy(dtype=float)
    order = [i for i in np.argsort(-means if m.higher_is_better else means, kind="stable")
             if np.isfinite(means[i])]
    if len(order) < 2:
        return None, None
    (a_v, a_i), (b_v, b_i) = (_values(entries[order[0]], m), _values(entries[order[1]], m))
    common, ia, ib = np.intersect1d(a_i, b_i, return_indices=True)
    if len(common) < 2:
        return order[0], float("nan")
    return order[0], paired_pvalue(a_v[ia], b_v[ib])


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "–"
    a = abs(x)
    return f"{x:.0f}" if a >= 1000 else f"{x:.1f}" if a >= 100 else f"{x:.2f}" if a >= 1 else f"{x:.3f}"


def to_markdown(df: pd.DataFrame, metrics: list[MetricMeta], title: str, notes: list[str]) -> str:
    """A Markdown table: value [95% CI] per cell, arrows for direction, notes below."""
    shown = [m for m in metrics if m.name in df]
    with_mode = bool(df["mode"].astype(str).str.len().any())
    head = ["method"] + (["mode"] if with_mode else []) + ["n"] + [f"{m.name} {'↑' if m.higher_is_better else '↓'}" for m in shown]
    lines = [f"# {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in df.iterrows():
        n = f"{r['n']}/{r['n_errors']}" + (" (subset)" if r["subset"] else "")
        cells = [str(r["method"])] + ([str(r["mode"])] if with_mode else []) + [n]
        for m in shown:
            mark = "≈ " if np.isfinite(r.get(f"{m.name}_p_next", np.nan)) and r[f"{m.name}_p_next"] >= ALPHA else ""
            nan = f" ({int(r[f'{m.name}_nan'])} NaN)" if r.get(f"{m.name}_nan", 0) else ""
            cells.append(f"{mark}{_fmt(r[m.name])} [{_fmt(r[m.name + '_lo'])}, {_fmt(r[m.name + '_hi'])}]{nan}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cells: mean [95% bootstrap CI]. ↑ higher is better, ↓ lower is better. "
              "≈ marks a best value not significantly better than the runner-up "
              f"(paired sign-flip test, p ≥ {ALPHA}).", ""]
    lines += [f"- {m.name} (v{m.version}): {m.definition}" + (" — valid counterfactuals only." if m.valid_only else "")
              for m in shown]
    lines += [""] + [f"{n}" for n in notes]
    return "\n".join(lines) + "\n"


def write(df: pd.DataFrame, markdown: str, provenance: dict, out_dir: Path, stem: str) -> list[Path]:
    """Write <stem>.csv, <stem>.md and <stem>.json into out_dir (atomically, each)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.csv", out_dir / f"{stem}.md", out_dir / f"{stem}.json"]
    atomic.write_text(paths[0], df.to_csv(index=False, float_format="%.6g"))
    atomic.write_text(paths[1], markdown)
    atomic.write_text(paths[2], json.dumps(provenance, indent=2, sort_keys=True, default=str) + "\n")
    return paths


HEADLINE = {"counterfactuals": ("validity", "l2", "queries", "seconds"),
            "attributions": ("deletion_auc", "insertion_auc", "seconds")}


def headline(folder: Path) -> str:
    """The run's headline tables as plain text: method, n, the main metrics as mean [95% CI]."""
    blocks = []
    for stem, metrics in HEADLINE.items():
        path = Path(folder) / f"{stem}.csv"
        if not path.exists():
            continue
        df = pd.read_csv(path).fillna({"mode": ""})
        shown = [m for m in metrics if m in df.columns]
        rows = [["method", "n", *shown]]
        for _, r in df.iterrows():
            name = r["method"] + (f"/{r['mode']}" if r["mode"] else "")
            cells = [f"{_fmt(r[m])} [{_fmt(r[m + '_lo'])}, {_fmt(r[m + '_hi'])}]" if f"{m}_lo" in df.columns
                     else _fmt(r[m]) for m in shown]
            rows.append([name, str(int(r["n"])), *cells])
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        blocks.append(f"{stem}:\n" + "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths))
                                              for row in rows))
    return "\n\n".join(blocks)
