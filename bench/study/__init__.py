"""Studies: a grid of (dataset, model with its params, training seed) x the configured methods.

A preset with a `[study]` table (bench.config.StudyConfig) is a study. It expands into cells
(bench/study/cells.py), each an ordinary run config, and each cell into work units with
explicit dependencies (bench/study/units.py):

    train (cell) -> [open (cell)] -> explain (cell, method, chunk of errors) ... -> [finish (cell)] -> table (study)

Every unit is idempotent: training is keyed and cached by bench.checkpoints (file lock), and
an explain unit's records and scores are keyed by the same store entries as a plain run's,
so a study resumes after any interruption. An executor runs the units (bench/study/executors.py):
`local` in this process, `ray` as Ray tasks whose results only the driver writes to the store.
The driver (bench/study/driver.py) opens and finishes each cell (bench/cell.py: its boards), and
bench/study/outputs.py writes the study table (built by bench/study/table.py). A plain `bench run`
is a one-cell study through the same driver and units. This module imports no torch.
"""

from __future__ import annotations

__all__ = ["run_study"]


def run_study(cfg, executor: str = "local", address: str | None = None, progress: bool = True) -> dict:
    """Run the study of `cfg` (a RunConfig with `study`); see bench.study.driver.run_study."""
    from bench.study.driver import run_study as _run

    return _run(cfg, executor=executor, address=address, progress=progress)
