"""The study table: one row per (model label, seed) and one per label across its seeds.

Read from the cells' folders only (each cell's `cell.json` and leaderboards), so the table is
a function of what the cells wrote. Columns: dataset, label, model, params (JSON), seed ("all"
on a label's row across seeds), n_seeds, n_params, train_seconds, test_accuracy, n_errors,
rows_per_s (the model's raw forward throughput the counterfactual board recorded), then each
headline `<method>.<metric>` with `_lo` / `_hi`: on a seed's row the cell board's 95% interval
over its errors (by the metric's kind), on a label's row the mean of the seed-level values and
a Student t interval over them (bench.stats.t_interval; `ci_method` names which). test_accuracy,
n_errors, train_seconds and rows_per_s get intervals on the across-seeds rows only.
Written as study.csv, study.md, study.json (provenance), study_quality.png, and the
meta-evaluation of each label's boards (bench.meta) under meta/<label>/.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench import atomic
from bench.stats import t_interval

log = logging.getLogger("bench")
ATTRIBUTION_CORE = ("saliency", "ig", "gradcam", "deeplift", "deepshap", "random")
# (board stem, method, metrics): the headline scores of the core methods, where configured
HEADLINES = (("counterfactuals", "gradient", ("validity", "l2", "queries")),
             ("counterfactuals", "growing_spheres", ("validity", "queries")),
             *(("attributions", m, ("deletion_auc", "insertion_auc")) for m in ATTRIBUTION_CORE))
MODEL_COLUMNS = ("n_params", "train_seconds", "test_accuracy", "n_errors", "rows_per_s")
TIMING_COLUMNS = ("train_seconds", "rows_per_s")  # machine-dependent: not compared across executors


def _board(folder: Path, stem: str) -> pd.DataFrame | None:
    path = folder / f"{stem}.csv"
    return pd.read_csv(path, keep_default_na=False, na_values=[""]).fillna({"mode": ""}) if path.exists() else None


def _pick(df: pd.DataFrame, method: str):
    """The method's row: mode "predicted" when it has several (attributions), else its only row."""
    rows = df[df["method"] == method]
    if rows.empty:
        return None
    pred = rows[rows["mode"] == "predicted"]
    return (pred if len(pred) else rows).iloc[0]


def seed_row(folder: Path) -> dict:
    """A cell's row of the study table, from its folder."""
    s = json.loads((folder / "cell.json").read_text())
    row = dict(dataset=s["dataset"], label=s["label"], model=s["model"],
               params=json.dumps(s["model_params"], sort_keys=True), seed=str(s["seed"]), n_seeds=1,
               ci_method="the cell board's interval over its errors",
               **{k: s[k] for k in MODEL_COLUMNS})
    for stem, method, metrics in HEADLINES:
        df = _board(folder, stem)
        r = None if df is None else _pick(df, method)
        if r is None:
            continue
        for m in metrics:
            if m in r.index:
                row.update({f"{method}.{m}": r[m], f"{method}.{m}_lo": r[f"{m}_lo"], f"{method}.{m}_hi": r[f"{m}_hi"]})
    return row


PROPORTIONS = {"test_accuracy"}  # besides the boards' proportion metrics: a t interval is clipped to [0, 1]


def across_seeds(rows: list[dict], n_boot: int = 0, seed: int = 0, proportions: set = frozenset()) -> dict:
    """A label's row across its seeds: the mean of the seed values and a Student t interval over them.

    Each seed's value is a mean over that model's errors, so the spread of the seed values holds
    both the training-seed and the instance-sampling variance; t with n_seeds - 1 degrees of
    freedom (none below 2 seeds), clipped to [0, 1] for proportions (`proportions`: the metric
    names, matched on the column's last part). `n_boot` and `seed` are kept for callers.
    """
    first = rows[0]
    out = {k: first[k] for k in ("dataset", "label", "model", "params")}
    out.update(seed="all", n_seeds=len(rows), ci_method=f"t over {len(rows)} seed means")
    values = [k for k in first if k not in out and k not in ("n_seeds", "ci_method")
              and not k.endswith(("_lo", "_hi"))]
    for k in values:
        cell = t_interval([r.get(k, np.nan) for r in rows])
        lo, hi = cell.lo, cell.hi
        if k.split(".")[-1] in PROPORTIONS | set(proportions) and np.isfinite(lo):
            lo, hi = max(lo, 0.0), min(hi, 1.0)
        out.update({k: cell.mean, f"{k}_lo": lo, f"{k}_hi": hi})
    return out


def build_table(folders: list[Path], n_boot: int, seed: int) -> pd.DataFrame:
    """Seed rows, each label followed by its across-seeds row, in grid order."""
    rows = [seed_row(f) for f in folders]
    proportions = {name for name, kind in _kinds(folders).items() if kind == "proportion"}
    out = []
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        out += mine + [across_seeds(mine, n_boot, seed, proportions)]
    df = pd.DataFrame(out)
    lead = ["dataset", "label", "model", "params", "seed", "n_seeds", "ci_method"]
    model_cols = [c for m in MODEL_COLUMNS for c in (m, f"{m}_lo", f"{m}_hi") if c in df.columns]
    return df[lead + model_cols + [c for c in df.columns if c not in lead and c not in model_cols]]


def headline_columns(df: pd.DataFrame) -> list[str]:
    return [f"{m}.{k}" for _, m, ks in HEADLINES for k in ks if f"{m}.{k}" in df.columns]


def write_study(cfg, dataset: str, cells: list, folder: Path, info: dict) -> list[Path]:
    """study.csv / .md / .json, the quality-vs-accuracy figure and per-label meta-evaluation in `folder`."""
    from bench import provenance
    from bench.study.cells import study_name

    folder.mkdir(parents=True, exist_ok=True)
    cell_folders = [folder / c.name for c in cells]
    df = build_table(cell_folders, cfg.n_bootstrap, cfg.seed)
    directions = _directions(cell_folders)
    name = study_name(cfg)
    paths = [atomic.write_text(folder / "study.csv", df.to_csv(index=False, float_format="%.6g"))]
    paths.append(_figure(df, directions, folder / "study_quality.png", f"{dataset} / {name}"))
    meta_paths, meta_notes = _meta(cells, folder, f"{dataset} / {name}", cfg.n_bootstrap)
    paths += meta_paths
    from bench.study.report import markdown

    paths.append(atomic.write_text(folder / "study.md", markdown(cfg, dataset, cells, df, directions, meta_notes)))
    prov = dict(schema_version="1", created=provenance.stamp(), study=name, dataset=dataset,
                command=provenance.reproduce_command(cfg), config=cfg.to_dict(), git=provenance.git_state(),
                libraries=provenance.library_versions(), headlines=[list(h[:2]) + [list(h[2])] for h in HEADLINES],
                cells=[dict(key=c.key, folder=c.name, **json.loads((folder / c.name / "cell.json").read_text()))
                       for c in cells], **info)
    paths.append(atomic.write_json(folder / "study.json", prov))
    return paths


def _metric_field(folders: list[Path], field: str, default=None) -> dict:
    """metric -> one field of its provenance record (kind, higher_is_better, ...), from the cells' boards."""
    out = {}
    for f in folders:
        for stem in ("counterfactuals", "attributions"):
            p = f / f"{stem}.json"
            if p.exists():
                out.update({m["name"]: m.get(field, default) for m in json.loads(p.read_text())["metrics"]})
    return out


def _kinds(folders: list[Path]) -> dict[str, str]:
    """metric -> kind ("mean" | "proportion" | "timing")."""
    return _metric_field(folders, "kind", "mean")


def _directions(folders: list[Path]) -> dict[str, bool]:
    """metric -> higher_is_better."""
    return {k: bool(v) for k, v in _metric_field(folders, "higher_is_better", True).items()}


def _meta(cells: list, folder: Path, title: str, n_boot: int) -> tuple[list[Path], list[str]]:
    """bench.meta over each label's boards (its seeds), written to meta/<label>/."""
    import bench
    from bench import meta

    paths, notes = [], []
    for label in dict.fromkeys(c.label for c in cells):
        boards = [bench.load(folder / c.name) for c in cells if c.label == label]
        try:
            with warnings.catch_warnings():  # nanmean over metrics no pair of boards ranks: NaN, said in the table
                warnings.simplefilter("ignore", RuntimeWarning)
                tables = meta.summary(boards, n_boot=min(200, n_boot))
            paths += meta.write(tables, folder / "meta" / label, f"{title} / {label}")
            for c in cells:  # the flags under each of the label's cell boards
                if c.label == label:
                    paths += meta.annotate(folder / c.name, tables, f"../meta/{label}/meta.md")
            notes.append(f"[{label}](meta/{label}/meta.md)")
        except Exception as e:  # noqa: BLE001 - the study table stands without it; say why
            log.warning("meta-evaluation of %s failed: %s: %s", label, type(e).__name__, e)
            notes.append(f"{label}: meta-evaluation failed ({type(e).__name__}: {str(e)[:120]})")
    return paths, notes


def _figure(df: pd.DataFrame, directions: dict[str, bool], path: Path, title: str) -> Path:
    """Explanation quality against test accuracy: one panel per headline score (queries left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in headline_columns(df) if not c.endswith(".queries")] or ["n_errors"]
    ncols = min(4, len(cols))
    nrows = -(-len(cols) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    seeds, labels = df[df["seed"] != "all"], df[df["seed"] == "all"]
    colours = {lab: plt.cm.tab10(i % 10) for i, lab in enumerate(labels["label"])}
    for ax, col in zip(axes.flat, cols):
        for _, r in seeds.iterrows():
            ax.plot(r["test_accuracy"], r[col], "o", ms=3, alpha=0.45, color=colours[r["label"]])
        for _, r in labels.iterrows():
            yerr = [[max(r[col] - r.get(f"{col}_lo", r[col]), 0)], [max(r.get(f"{col}_hi", r[col]) - r[col], 0)]]
            ax.errorbar(r["test_accuracy"], r[col], yerr=yerr, fmt="s", ms=5, capsize=2, color=colours[r["label"]],
                        label=r["label"])
        metric = col.split(".")[-1]
        arrow = {True: " ↑", False: " ↓"}.get(directions.get(metric), "")
        ax.set_title(col + arrow, fontsize=9)
        ax.set_xlabel("test accuracy", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(cols):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.suptitle(f"Explanation quality vs test accuracy: {title} (squares: mean over seeds, 95% CI; dots: seeds)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
