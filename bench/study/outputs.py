"""Everything a study writes into its folder, beside its cells' boards.

study.csv (the study table, bench.study.table), study.md (it in words, bench.study.study_md),
study.json (its provenance), study_quality.png (explanation quality against test accuracy) and
the meta-evaluation of each label's boards across its seeds (bench.meta) under meta/<label>/,
whose flags are also written under each cell board's tables.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pandas as pd

from bench import atomic, board
from bench.study.table import HEADLINES, build_table, headline_columns, provenances

log = logging.getLogger("bench")


def write_study(cfg, dataset: str, cells: list, folder: Path, info: dict) -> list[Path]:
    """Write study.csv / .md / .json, the quality-vs-accuracy figure and per-label meta-evaluation in `folder`.

    Args:
        cfg: the study's RunConfig.
        dataset: the dataset whose cells `folder` holds.
        cells: those cells (bench.study.cells.Cell), each written in `folder / cell.name`.
        folder: the study's folder for `dataset`.
        info: more provenance for study.json (executor, unit timings, failures, wall time, restat).
    Returns:
        The paths written.
    """
    from bench import provenance
    from bench.study.cells import study_name
    from bench.study.study_md import markdown

    folder.mkdir(parents=True, exist_ok=True)
    if cfg.publish and cfg.study.only:  # a sitting: the table covers every cell published so far, so its
        import dataclasses             # command (study.md, study.json) is the whole grid's

        cfg = dataclasses.replace(cfg, study=dataclasses.replace(cfg.study, only=()))
    cell_folders = [folder / c.name for c in cells]
    df = build_table(cell_folders)
    directions = board.directions(provenances(cell_folders))
    name = study_name(cfg)
    paths = [board.write_csv(df, folder / "study.csv")]
    paths.append(_figure(df, directions, folder / "study_quality.png", f"{dataset} / {name}"))
    meta_paths, meta_notes, flags = _meta(cells, folder, f"{dataset} / {name}", cfg.n_bootstrap)
    paths += meta_paths
    common_paths, common_lines = _common(cells, folder, dataset, directions, flags)
    paths += common_paths
    paths.append(atomic.write_text(folder / "study.md", markdown(cfg, dataset, cells, df, directions, meta_notes,
                                                                 common_lines)))
    prov = dict(schema_version="1", created=provenance.stamp(), study=name, dataset=dataset,
                command=provenance.reproduce_command(cfg), config=cfg.to_dict(), git=provenance.git_state(),
                libraries=provenance.library_versions(), headlines=[list(h[:2]) + [list(h[2])] for h in HEADLINES],
                cells=[dict(key=c.key, folder=c.name, **json.loads((folder / c.name / "cell.json").read_text()))
                       for c in cells], **info)
    paths.append(atomic.write_json(folder / "study.json", prov))
    return paths


def _meta(cells: list, folder: Path, title: str, n_boot: int) -> tuple[list[Path], list[str], dict]:
    """bench.meta over each label's boards (its seeds), per row kind, written to meta/<label>[-<rows>]/.

    Returns the paths, one note per group, and (label, rows) -> {metric: reason} of the
    attribution metrics the group's meta-evaluation flags.
    """
    import os

    from bench import meta
    from bench.results import load

    paths, notes, flags = [], [], {}
    for label, rows in dict.fromkeys((c.label, c.rows) for c in cells):
        group = label if rows == "errors" else f"{label}-{rows}"
        mine = [c for c in cells if (c.label, c.rows) == (label, rows)]
        boards = [load(folder / c.name) for c in mine]
        try:
            with warnings.catch_warnings():  # nanmean over metrics no pair of boards ranks: NaN, said in the table
                warnings.simplefilter("ignore", RuntimeWarning)
                tables = meta.summary(boards, n_boot=min(200, n_boot))
            paths += meta.write(tables, folder / "meta" / group, f"{title} / {group}")
            for c in mine:  # the flags under each of the group's cell boards
                link = os.path.relpath(folder / "meta" / group / "meta.md", folder / c.name)
                paths += meta.annotate(folder / c.name, tables, link)
            flags[(label, rows)] = meta.flagged(tables).get(board.ATTRIBUTIONS.stem, {})
            notes.append(f"[{group}](meta/{group}/meta.md)")
        except Exception as e:  # noqa: BLE001 - the study table stands without it; say why
            log.warning("meta-evaluation of %s failed: %s: %s", group, type(e).__name__, e)
            notes.append(f"{group}: meta-evaluation failed ({type(e).__name__}: {str(e)[:120]})")
    return paths, notes, flags


def _common(cells: list, folder: Path, dataset: str, directions: dict, flags: dict) -> tuple[list[Path], list[str]]:
    """The paired comparison on the common image set (bench.study.paired), when the study explained one.

    A metric is not claimed when the meta-evaluation flags it on more than half the labels'
    common boards. Writes comparison.csv (per score and label) and comparison_tests.csv.
    """
    from collections import Counter

    from bench.site.caveats import floor_of
    from bench.study import paired

    common = [c for c in cells if c.rows == "common"]
    if not common:
        return [], []
    labels = list(dict.fromkeys(c.label for c in common))
    counts = Counter(m for lab in labels for m in flags.get((lab, "common"), {}))
    reasons = {m: f"meta-evaluation flags it on {k} of {len(labels)} labels' common boards"
               for m, k in counts.items() if k > len(labels) / 2}
    floor = floor_of(dataset)
    cell_df, scores = paired.load([folder / c.name for c in common], floor)
    values, tests = paired.compare(cell_df, scores, directions, reasons)
    paths = [board.write_csv(values, folder / "comparison.csv"), board.write_csv(tests, folder / "comparison_tests.csv")]
    return paths, paired.markdown(values, tests, cell_df, floor) + paired.table4(cell_df, floor)


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
