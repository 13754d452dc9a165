"""Figures a person would rather look at than read: overlays, heatmaps, budget curves.

Each figure is written next to its leaderboard and linked from the Markdown table.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.report.image_grid import image_grid, sample_positions  # noqa: E402


def _artifacts(ctx, entry_key: str, test_idx: list[int]) -> dict[int, dict]:
    return {r["test_index"]: r for r in ctx.store.records(entry_key, test_idx)}


def counterfactual_figures(ctx, entries: list[dict], out_dir: Path) -> list[Path]:
    """Overlay grid and query-budget curve for the counterfactual leaderboard."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [overlay_grid(ctx, entries, out_dir / "counterfactuals_overlays.png"),
            budget_curve(ctx, entries, out_dir / "counterfactuals_budget.png")]


def overlay_grid(ctx, entries: list[dict], path: Path) -> Path:
    """Rows: a fixed sample of errors. Columns: original | each x_cf | each signed delta.

    Each delta column has its own colour scale (printed in its title), so a solver's small
    changes stay visible next to another's large ones. A hatched "not run" cell marks an error
    outside a solver's subset; a grey "failed" cell one where it ran and found no valid
    counterfactual (with its reason, shortened).
    """
    errs = ctx.errors
    pos = sample_positions(len(errs), ctx.cfg.n_figure)
    test_idx = [int(errs.index[p]) for p in pos]
    cf_cols, diff_cols = [], []
    for e in entries:
        recs = _artifacts(ctx, e["entry_key"], test_idx)
        valid = ctx.store.scores(e["entry_key"], "validity", "1", test_idx)
        cfs, diffs = [], []
        for p, t, v in zip(pos, test_idx, valid):
            if t not in recs:
                cfs.append(None)
                diffs.append(None)
            elif not v > 0.5:
                label = failed_label(recs[t])
                cfs.append(label)
                diffs.append(label)
            else:
                cfs.append(recs[t]["artifact"][0])
                diffs.append(recs[t]["artifact"][0] - errs.x[p, 0].numpy())
        cf_cols.append((e["method"], cfs))
        diff_cols.append((f"Δ {e['method']}", diffs))
    originals = ("original", [errs.x[p, 0].numpy() for p in pos])
    row_labels = [f"#{t}: {int(errs.true[p])}←{int(errs.pred[p])}" for p, t in zip(pos, test_idx)]
    fig = image_grid([originals] + cf_cols, diff_cols, row_labels,
                     title="Errors (true←predicted), their counterfactuals and signed changes")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def failed_label(record: dict) -> str:
    """Short text for a cell where a solver ran and found no valid counterfactual."""
    reason = (record.get("reason") or ("not flipped" if record.get("success") else "")).strip()
    return "\n".join(["failed", *textwrap.wrap(reason, 16, max_lines=3, placeholder="…")])


def budget_curve(ctx, entries: list[dict], path: Path) -> Path:
    """Share of errors flipped (valid) vs model rows spent, one line per solver, log x."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for e in entries:
        recs = ctx.store.records(e["entry_key"])
        if not recs:
            continue
        test_idx = [r["test_index"] for r in recs]
        valid = ctx.store.scores(e["entry_key"], "validity", "1", test_idx) > 0.5
        cost = np.array([r["queries"] + r["grad_queries"] for r in recs])
        top = max(cost.max(), e.get("fit_queries", 0.0) / len(recs) + cost.mean(), 10)
        budgets = np.logspace(0, max(1.0, np.log10(top) + 0.1), 200)
        share = [(valid & (cost <= b)).mean() for b in budgets]
        label = e["method"] + (f" (subset n={len(recs)})" if len(recs) < len(ctx.errors) else "")
        line = ax.step(budgets, share, where="post", label=label + (" per error" if e.get("fit_queries") else ""))[0]
        if e.get("fit_queries"):  # a one-off fit: where the solver really stands once its training is shared out
            amortised = e["fit_queries"] / len(recs) + cost.mean()
            ax.plot([amortised], [valid.mean()], marker="*", markersize=12, color=line.get_color(), linestyle="",
                    label=f"{e['method']} amortised: training / {len(recs)} errors + per error")
            ax.hlines(valid.mean(), cost.max(), amortised, colors=line.get_color(), linestyles=":")
    ax.set_xscale("log")
    ax.set_xlabel("model rows per error (forward + gradient), log scale")
    ax.set_ylabel("share of errors flipped to the true class")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Query budget: validity vs model queries")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def attribution_figures(ctx, entries: list[dict], out_dir: Path) -> list[Path]:
    """Heatmap grid: a fixed sample of errors x methods, overlaid on the digits."""
    out_dir.mkdir(parents=True, exist_ok=True)
    errs = ctx.errors
    pos = sample_positions(len(errs), ctx.cfg.n_figure)
    test_idx = [int(errs.index[p]) for p in pos]
    path = out_dir / "attributions_heatmaps.png"
    from bench.report.image_grid import heatmap_grid

    cols = []
    for e in entries:
        recs = _artifacts(ctx, e["entry_key"], test_idx)
        cols.append((f"{e['method']}\n({e['mode']})", [recs[t]["artifact"][0] if t in recs else None for t in test_idx],
                     [recs[t]["explained"] if t in recs else None for t in test_idx]))
    digits = [errs.x[p, 0].numpy() for p in pos]
    labels = [f"#{t}: true {int(errs.true[p])}, pred {int(errs.pred[p])}" for p, t in zip(pos, test_idx)]
    fig = heatmap_grid(digits, cols, labels, title="Attributions on errors (explained class in each cell)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [path]
