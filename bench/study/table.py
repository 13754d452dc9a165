"""The study table: one row per (model label, seed) and one per label across its seeds.

Built from the cells' folders only (each cell's `cell.json` and boards), so the table is a
function of what the cells wrote. Columns: dataset, label, rows (the row kind the cell
explained: errors, or the common set ...), model, params (JSON), seed ("all" on a label's row
across seeds), n_seeds, n_params, train_seconds, test_accuracy, n_errors (the model's test
errors), steps / epochs / train_cpu_seconds where training recorded them, rows_per_s (the model's raw forward throughput the counterfactual board recorded), then each
headline `<method>.<metric>` with `_lo` / `_hi`: on a seed's row the cell board's 95% interval
over its errors (by the metric's kind), on a label's row the mean of the seed-level values and
a Student t interval over them (bench.stats.t_interval; `ci_method` names which). test_accuracy,
n_errors, train_seconds and rows_per_s get intervals on the across-seeds rows only.
bench.study.outputs writes it (study.csv) with everything else a study writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board
from bench.stats import t_interval

ATTRIBUTION_CORE = ("saliency", "ig", "gradcam", "deeplift", "deepshap", "random")
CF, ATTR = board.COUNTERFACTUALS.stem, board.ATTRIBUTIONS.stem
# (board table stem, method, metrics): the headline scores of the core methods, where configured
HEADLINES = ((CF, "gradient", ("validity", "l2", "queries")),
             (CF, "growing_spheres", ("validity", "queries")),
             *((ATTR, m, ("deletion_auc", "insertion_auc", "del_morf_zeros", "del_morf_blur", "srg_blur"))
               for m in ATTRIBUTION_CORE))
MODEL_COLUMNS = ("n_params", "train_seconds", "test_accuracy", "n_errors", "rows_per_s")
TRAINING_COLUMNS = ("steps", "epochs", "train_cpu_seconds")  # recorded by training since issue 25


def _board(folder: Path, stem: str) -> pd.DataFrame | None:
    path = board.table(stem).csv(folder)
    return board.read_table(path).fillna({"mode": ""}) if path.exists() else None


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
    row = dict(dataset=s["dataset"], label=s["label"], rows=s.get("rows", "errors"), model=s["model"],
               params=json.dumps(s["model_params"], sort_keys=True), seed=str(s["seed"]), n_seeds=1,
               ci_method="the cell board's interval over its errors",
               **{k: s[k] for k in MODEL_COLUMNS}, **{k: s[k] for k in TRAINING_COLUMNS if k in s})
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


def across_seeds(rows: list[dict], proportions: set = frozenset()) -> dict:
    """A label's row across its seeds: the mean of the seed values and a Student t interval over them.

    Each seed's value is a mean over that model's errors, so the spread of the seed values holds
    both the training-seed and the instance-sampling variance; t with n_seeds - 1 degrees of
    freedom (none below 2 seeds), clipped to [0, 1] for proportions (`proportions`: the metric
    names, matched on the column's last part).
    """
    first = rows[0]
    out = {k: first[k] for k in ("dataset", "label", "rows", "model", "params") if k in first}
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


def build_table(folders: list[Path]) -> pd.DataFrame:
    """Seed rows, each label followed by its across-seeds row, in grid order (`folders`: the cells')."""
    rows = [seed_row(f) for f in folders]
    kinds = board.metric_field(provenances(folders), "kind", "mean")
    proportions = {name for name, kind in kinds.items() if kind == "proportion"}
    out = []
    for label, kind in dict.fromkeys((r["label"], r["rows"]) for r in rows):
        mine = [r for r in rows if (r["label"], r["rows"]) == (label, kind)]
        out += mine + [across_seeds(mine, proportions)]
    df = pd.DataFrame(out)
    lead = ["dataset", "label", "rows", "model", "params", "seed", "n_seeds", "ci_method"]
    model_cols = [c for m in (*MODEL_COLUMNS, *TRAINING_COLUMNS) for c in (m, f"{m}_lo", f"{m}_hi") if c in df.columns]
    return df[lead + model_cols + [c for c in df.columns if c not in lead and c not in model_cols]]


def headline_columns(df: pd.DataFrame) -> list[str]:
    """The study table's `<method>.<metric>` headline columns, in HEADLINES order."""
    return [f"{m}.{k}" for _, m, ks in HEADLINES for k in ks if f"{m}.{k}" in df.columns]


def provenances(folders: list[Path]) -> list[dict]:
    """The provenance of every board table in the cells' folders (cell by cell, in bench.board.TABLES order)."""
    return [board.read_json(t.json(f)) for f in folders for t in board.tables_in(f)]
