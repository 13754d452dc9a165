"""study.md: the study table in plain words, what the grid shows and what it cannot show.

bench.study.outputs writes it; everything here is computed from the study table (bench.study.table).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
from scipy.stats import ttest_ind

from bench.board import ATTRIBUTIONS, COUNTERFACTUALS, TABLES, fmt
from bench.stats import ALPHA, holm
from bench.study.table import HEADLINES, headline_columns


def _cell(r, col: str) -> str:
    v = r.get(col, np.nan)
    if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
        return "–"
    if col in ("n_params", "n_errors") and r["seed"] != "all":
        return f"{int(v):,}"
    lo, hi = r.get(f"{col}_lo", np.nan), r.get(f"{col}_hi", np.nan)
    if isinstance(lo, float) and np.isfinite(lo) and np.isfinite(hi) and (lo != v or hi != v):
        return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
    return fmt(v)


def _table(df: pd.DataFrame, cols: list[str], heads: list[str]) -> list[str]:
    lines = ["| label | seed | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        seed = f"**all ({int(r['n_seeds'])})**" if r["seed"] == "all" else str(r["seed"])
        kind = r.get("rows", "errors")
        label = r["label"] if kind in ("errors", "") or not isinstance(kind, str) else f"{r['label']} ({kind} set)"
        lines.append(f"| {label} | {seed} | " + " | ".join(_cell(r, c) for c in cols) + " |")
    return lines


def headline(df: pd.DataFrame, directions: dict) -> list[str]:
    """Per headline score (and test accuracy): the best label across seeds, its interval, and a corrected test.

    The best label is compared with the runner-up by Welch's t test on their seed values (each
    seed's value is a mean over that model's own errors: the models explain different images,
    so no pairing is possible); the headline's tests are one family, Holm-corrected.
    """
    labels, seeds = df[df["seed"] == "all"], df[df["seed"] != "all"]
    if len(labels) < 2:
        return []
    found = []
    for col in ["test_accuracy"] + [c for c in headline_columns(df)
                                  if not c.endswith(".queries") and not c.startswith("random.")]:
        higher = True if col == "test_accuracy" else directions.get(col.split(".")[-1])
        vals = labels[["label", col, f"{col}_lo", f"{col}_hi"]].dropna(subset=[col]) if col in labels else None
        if higher is None or vals is None or len(vals) < 2 or vals[col].nunique() < 2:
            continue
        vals = vals.sort_values(col, ascending=not higher)
        best, second = vals.iloc[0], vals.iloc[1]
        a = pd.to_numeric(seeds.loc[seeds["label"] == best["label"], col], errors="coerce").dropna()
        b = pd.to_numeric(seeds.loc[seeds["label"] == second["label"], col], errors="coerce").dropna()
        with warnings.catch_warnings():  # near-identical seed values: scipy warns of precision loss, p is still defined
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(ttest_ind(a, b, equal_var=False).pvalue) if len(a) >= 2 and len(b) >= 2 else np.nan
        why = ("fewer than 2 seeds" if min(len(a), len(b)) < 2 else "the seed values are constant")
        found.append((col, higher, vals, best, second, p, why))
    adjusted = holm([f[5] for f in found])
    out = []
    for (col, higher, vals, best, second, p, why), q in zip(found, adjusted):
        worst, tied = vals.iloc[-1], (vals[col] == best[col]).sum()
        test = f"Welch p = {fmt(p)}, Holm-adjusted {fmt(q)}" if np.isfinite(p) else f"no test: {why}"
        verdict = (f"tied with {tied - 1} other{'s' * (tied > 2)}, e.g." if tied > 1
                   else "ahead of" if np.isfinite(q) and q < ALPHA else "not shown to differ from")
        out.append(f"- `{col}` {'↑' if higher else '↓'}: best **{best['label']}** {_cell(best, col)}, {verdict} "
                   f"the runner-up {second['label']} {_cell(second, col)} ({test})"
                   + (f"; worst {worst['label']} {fmt(worst[col])}." if len(vals) > 2 else "."))
    return ["## Headline", "", "Per score, the best model across its seeds (mean [95% t interval over the seed means]) "
            "against the runner-up: Welch's t test on the seed values, the headline's "
            f"{sum(np.isfinite(f[5]) for f in found)} tests one family, Holm-corrected; \"ahead of\" only when "
            f"the adjusted p < {ALPHA}. The random control is left out. Computed from the tables below.", ""] + out + [""]


def markdown(cfg, dataset: str, cells: list, df: pd.DataFrame, directions: dict, meta_notes: list[str],
             common_lines: list[str] = ()) -> str:
    """study.md's text: the grid, what it shows and cannot show, the headline, the model and score tables.

    Args:
        cfg: the study's RunConfig; dataset: the dataset of `cells`; cells: its cells.
        df: the study table (bench.study.table.build_table).
        directions: metric -> higher_is_better (bench.board.directions).
        meta_notes: one link (or failure note) per label's meta-evaluation.
        common_lines: the paired comparison on the common image set (bench.study.outputs._common);
            when given, it is the headline, and the Welch headline over each model's own errors is left out.
    """
    from bench.provenance import reproduce_command
    from bench.study.cells import study_name

    labels = list(dict.fromkeys(c.label for c in cells))
    seeds = sorted({c.seed for c in cells})
    limited = any(c.cfg.limit is not None for c in cells)
    lines = [f"# Study {study_name(cfg)}: {dataset}", ""]
    if limited:
        lines += ["**NOT FOR PUBLICATION: --limit cut every cell's error set.**", ""]
    from bench.study.cells import cells as grid_cells

    n_grid = len([c for c in grid_cells(cfg, restrict=False) if c.dataset == dataset])
    if len(cells) < n_grid:
        lines += [f"**INCOMPLETE: {len(cells)} of the grid's {n_grid} cells ** (a run of study.only, or a "
                  "publish in sittings: bench/study/resume.py): every table and comparison below covers these cells only.", ""]
    params = {c.label: (c.cfg.model, c.cfg.model_params) for c in cells}
    lines += [f"A grid of {len(labels)} model{'s' * (len(labels) != 1)} x {len(seeds)} training seed"
              f"{'s' * (len(seeds) != 1)} ({', '.join(map(str, seeds))}) on {dataset}; each cell is one trained "
              "model whose own test errors every configured method explains, with the cell's ordinary "
              "leaderboards in its folder (`<label>-seed<k>/`). Models: "
              + "; ".join(f"**{lab}** = `{m}` {json.dumps(p, sort_keys=True)}" for lab, (m, p) in params.items()) + ".",
              "",
              "**What it shows.** For each model: its size, training time, test accuracy, number of errors and "
              "forward speed, and the headline scores of the core methods on its errors (mean [95% CI]). A seed's "
              "row: the interval is its board's, over that model's errors. A label's **all** row: the "
              "mean of the seed-level values and a Student t interval over them (n_seeds - 1 degrees of freedom), "
              "which holds both the training-seed and the error-sampling variance.",
              "",
              "**What it cannot show.** "
              + (f"**Only {len(seeds)} seed{'s' * (len(seeds) != 1)} per model (fewer than 5)**: the t interval "
                 "over so few seed means is wide, and a difference between models must be large to show. "
                 if len(seeds) < 5 else "")
              + f"One dataset ({dataset}) of 28x28 grey digits or clothes: nothing here says how the methods fare on "
              "natural images. The models are CPU-sized (small widths, few epochs): differences between "
              "architectures or attention blocks here need not hold at full size. Each model explains its own "
              "errors, which differ in number and difficulty from model to model, so a score difference between "
              "models mixes the method's behaviour with the error sets'. Across "
              f"{len(labels)} model{'s' * (len(labels) != 1)} a trend against accuracy is a correlation over very "
              "few points, not a cause. Training time and rows/s depend on the machine (and a cached checkpoint's "
              "time is that of the machine that trained it).",
              ""]
    lines += list(common_lines) if common_lines else headline(df, directions)
    lines += ["## Models", ""]
    lines += _table(df, ["n_params", "train_seconds", "test_accuracy", "n_errors", "rows_per_s"],
                    ["parameters", "train s", "test accuracy", "errors", "forward rows/s"]) + [""]
    for t in TABLES:
        cols = [f"{m}.{k}" for stem, m, ks in HEADLINES if stem == t.stem for k in ks if f"{m}.{k}" in df.columns]
        if cols:
            arrows = [c + {True: " ↑", False: " ↓"}.get(directions.get(c.split(".")[-1]), "") for c in cols]
            lines += [f"## {t.title}", ""] + _table(df, cols, arrows) + [""]
    lines += ["Attribution scores are those of target mode `predicted` (the wrong class the model chose) where "
              f"the cell ran it. Headline definitions are the boards' (`<cell>/{COUNTERFACTUALS.md().name}`, "
              f"`{ATTRIBUTIONS.md().name}`). Columns and CSV schema: `study.csv`; provenance: `study.json`.", "",
              "![explanation quality vs test accuracy](study_quality.png)", "",
              "Meta-evaluation of each model's boards across its seeds (bench.meta: separation from the random "
              "control, metric agreement, bootstrap and seed stability): " + (", ".join(meta_notes) or "none") + ".",
              "", f"Reproduce: `{reproduce_command(cfg)}`", ""]
    return "\n".join(lines)
