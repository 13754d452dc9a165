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
    cell_folders = [folder / c.name for c in cells]
    df = build_table(cell_folders)
    directions = board.directions(provenances(cell_folders))
    name = study_name(cfg)
    paths = [board.write_csv(df, folder / "study.csv")]
    paths.append(_figure(df, directions, folder / "study_quality.png", f"{dataset} / {name}"))
    meta_paths, meta_notes = _meta(cells, folder, f"{dataset} / {name}", cfg.n_bootstrap)
    paths += meta_paths
    paths.append(atomic.write_text(folder / "study.md", markdown(cfg, dataset, cells, df, directions, meta_notes)))
    prov = dict(schema_version="1", created=provenance.stamp(), study=name, dataset=dataset,
                command=provenance.reproduce_command(cfg), config=cfg.to_dict(), git=provenance.git_state(),
                libraries=provenance.library_versions(), headlines=[list(h[:2]) + [list(h[2])] for h in HEADLINES],
                cells=[dict(key=c.key, folder=c.name, **json.loads((folder / c.name / "cell.json").read_text()))
                       for c in cells], **info)
    paths.append(atomic.write_json(folder / "study.json", prov))
    return paths


def _meta(cells: list, folder: Path, title: str, n_boot: int) -> tuple[list[Path], list[str]]:
    """bench.meta over each label's boards (its seeds), written to meta/<label>/."""
    from bench import meta
    from bench.results import load

    paths, notes = [], []
    for label in dict.fromkeys(c.label for c in cells):
        boards = [load(folder / c.name) for c in cells if c.label == label]
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
