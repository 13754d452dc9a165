"""Recompute a board's statistics from its own per-instance scores: `python -m bench.restat BOARD|STUDY ...`.

A board's tables are a function of its per-instance scores (`<stem>_instances.csv`) and the
aggregation code (bench.leaderboard, bench.stats, the tasks' `statistics`). After the
aggregation changes, `restat` rewrites `<stem>.csv`, `.md`, `.json` and the extra tables from
the per-instance scores the board already ships, without rerunning a method or a metric: the
per-instance numbers do not move, only the intervals, marks and tests built on them. This is a
publish (the tables change on purpose); the provenance records it under `restat`. Notes that
came from the run (errors line, reproduce command, cost notes, figures) are kept; notes that
are statistics (the random-control sanity line, the common-subset section) are recomputed;
the meta-evaluation flags block is dropped (rerun `bench meta ... --annotate`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board, leaderboard, provenance
from bench.leaderboard import EntryScores, MetricMeta

STAT_SUFFIXES = ("", "_lo", "_hi", "_n", "_nan", "_ci", "_best", "_p_next", "_p_next_holm")
STAT_COLUMNS = {"beats_random", "vs_random_p", "vs_random_p_holm", "vs_random_metric", "not_for_publication", "schema_version"}


def _kind(t: board.Table, name: str) -> str:
    """A metric's kind from its registry (boards written before kinds were recorded)."""
    if name == "seconds":
        return "timing"
    from bench.contract.registry import ATTR_METRICS, CF_METRICS

    registry = CF_METRICS if t is board.COUNTERFACTUALS else ATTR_METRICS
    return getattr(registry.get(name), "kind", "mean") if name in registry.names() else "mean"


def _metas(t: board.Table, prov: dict) -> list[MetricMeta]:
    return [MetricMeta(m["name"], bool(m["higher_is_better"]), bool(m["valid_only"]), m["definition"],
                       str(m["version"]), m.get("kind") or _kind(t, m["name"])) for m in prov["metrics"]]


def _rows(t: board.Table, prov: dict, inst: pd.DataFrame, old: pd.DataFrame,
          metas: list[MetricMeta]) -> list[EntryScores]:
    """The board's entries as EntryScores, in the old table's row order, from the per-instance CSV."""
    rows = []
    n_errors = int(prov["errors"]["n"])
    for _, r in old.iterrows():
        mine = inst[(inst["method"] == r["method"]) & (inst["mode"] == r["mode"])]
        scores = {m.name: mine[m.name].to_numpy(np.float64) for m in metas if m.name in mine and m.name in old}
        if "seconds" in old and "seconds" not in scores:
            scores["seconds"] = mine["seconds"].to_numpy(np.float64)
        valid = (mine["validity"].to_numpy(np.float64) > 0.5 if t is board.COUNTERFACTUALS and "validity" in mine
                 else np.ones(len(mine), bool))
        # a metric scored on the first k errors only: k = its finite + NaN count in the old table
        metric_n = {m.name: int(r[f"{m.name}_n"] + r[f"{m.name}_nan"]) for m in metas
                    if not m.valid_only and f"{m.name}_n" in old and np.isfinite(r[f"{m.name}_n"])
                    and int(r[f"{m.name}_n"] + r[f"{m.name}_nan"]) < len(mine)}
        rows.append(EntryScores(r["method"], r["mode"], str(r["version"]), mine["test_index"].to_numpy(np.int64),
                                valid, scores, n_errors, metric_n))
    return rows


def _run_notes(md: str, prov: dict, metas: list[MetricMeta]) -> list[str]:
    """The run's own notes: from the provenance, or (older boards) the lines after the definitions, less statistics."""
    if "notes" in prov:
        return list(prov["notes"])
    if board.FLAGS_BEGIN in md:
        md = md[:md.index(board.FLAGS_BEGIN)] + md[md.index(board.FLAGS_END) + len(board.FLAGS_END):]
    lines = md.rstrip("\n").split("\n")
    defs = [i for i, line in enumerate(lines) if any(line.startswith(f"- {m.name} (v") for m in metas)]
    start = (defs[-1] + 1) if defs else len(lines)
    notes = [line for line in lines[start:] if not line.startswith(("Sanity: ", "## On the common valid subset"))]
    if "## On the common valid subset" in md:  # an earlier restat's section: everything from its heading
        notes = notes[:next((i for i, line in enumerate(lines[start:]) if line.startswith("## On the common")),
                            len(notes))]
    while notes and not notes[0].strip():
        notes.pop(0)
    while notes and not notes[-1].strip():
        notes.pop()
    return notes


def restat_board(folder: str | Path, n_boot: int | None = None, seed: int | None = None) -> list[Path]:
    """Rewrite the board's tables in `folder` from its per-instance scores; returns the written paths."""
    from bench.tasks.attributions import AttributionTask
    from bench.tasks.counterfactuals import CounterfactualTask

    folder = Path(folder)
    paths = []
    for t in board.TABLES:
        if not t.csv(folder).exists():
            continue
        prov = board.read_json(t.json(folder))
        old = board.read_table(t.csv(folder)).fillna({"mode": ""})
        inst = board.read_instances(t.instances(folder))
        inst["mode"] = inst["mode"].fillna("")
        metas = _metas(t, prov)
        boot = int(n_boot or prov["config"].get("n_bootstrap", 1000))
        s = int(prov["config"].get("seed", 0) if seed is None else seed)
        rows = _rows(t, prov, inst, old, metas)
        limited = bool(old["not_for_publication"].iloc[0]) if "not_for_publication" in old and len(old) else False
        df = leaderboard.aggregate(rows, metas, boot, s, limited)
        stat_cols = {f"{m.name}{suf}" for m in metas for suf in STAT_SUFFIXES} | STAT_COLUMNS
        for c in old.columns:  # run-made columns (fit and amortised costs) carried over
            if c not in df and c not in stat_cols:
                df[c] = old[c].to_numpy()
        task = CounterfactualTask if t is board.COUNTERFACTUALS else AttributionTask
        stats = task.statistics(df, rows, metas, boot, s)
        text = t.md(folder).read_text()
        notes = _run_notes(text, prov, metas)
        for d, m in zip(prov["metrics"], metas):
            d["kind"] = m.kind
        title = prov.get("title") or text.split("\n", 1)[0].lstrip("# ").strip()
        md = leaderboard.to_markdown(stats.df, metas, title, notes + stats.notes)
        prov.update(stats.provenance, title=title, notes=notes, statistics=leaderboard.statistics_record(boot, s),
                    restat=dict(created=provenance.stamp(), git=provenance.git_state(),
                                what="statistics recomputed from the board's per-instance scores (bench.restat)"))
        paths += board.write(folder, t, stats.df, md, prov)
        paths += [board.write_csv(extra, folder / f"{name}.csv") for name, extra in stats.tables.items()]
    if not paths:
        raise FileNotFoundError(f"{folder}: no counterfactuals.csv or attributions.csv: not a board folder")
    return paths


def restat_study(folder: str | Path) -> list[Path]:
    """Restat every cell board of a published study, then rewrite its study table, figure and meta-evaluation."""
    from bench.config import RunConfig, build
    from bench.study import cells as study_cells
    from bench.study.outputs import write_study

    folder = Path(folder)
    prov = board.read_json(folder / "study.json")
    cfg = build(RunConfig, prov["config"])
    cells = study_cells.cells(cfg)
    paths = []
    for c in cells:
        paths += restat_board(folder / c.name)
    written = {"schema_version", "created", "study", "dataset", "command", "config", "git", "libraries", "headlines",
               "cells"}
    info = {k: v for k, v in prov.items() if k not in written}
    info["restat"] = dict(created=provenance.stamp(), git=provenance.git_state(),
                          what="cell boards' statistics recomputed from their per-instance scores (bench.restat), "
                               "study table and meta-evaluation rewritten")
    return paths + write_study(cfg, prov["dataset"], cells, folder, info)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m bench.restat BOARD [BOARD ...]", file=sys.stderr)
        return 2
    for folder in args:
        try:
            paths = restat_study(folder) if (Path(folder) / "study.json").exists() else restat_board(folder)
        except (OSError, ValueError, KeyError) as e:
            print(f"bench restat: {folder}: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        print(f"bench restat: {folder}: {len(paths)} files rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
