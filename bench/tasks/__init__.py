"""The two task strategies the pipeline (bench/pipeline.py) runs: counterfactuals and attributions.

`Task` is the strategy's protocol; `Produced`, `FinishedEntry`, `Statistics` and `Finished`
are the typed values that cross the seam between the pipeline and a task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from bench.board import Table


@dataclass
class Produced:
    """A method's output for one batch, as the pipeline stores it.

    artifact: shaped like x (x_cf or attr); success: bool (N,); reason: one string per row;
    seconds: per-row wall times when the method timed each row itself (else None: the
    pipeline divides the batch time).
    """

    artifact: torch.Tensor
    success: torch.Tensor
    reason: list[str]
    seconds: list[float] | None = None


@dataclass
class Statistics:
    """What a task's board adds from per-instance scores alone (so a board's statistics can be recomputed).

    df: the leaderboard table with any added columns; notes: Markdown lines for under the
    table; provenance: what to record; tables: extra CSVs (stem -> DataFrame) beside the board.
    """

    df: object
    notes: list
    provenance: dict
    tables: dict


@dataclass
class FinishedEntry:
    """One leaderboard row, done: its per-instance scores (`scores`) and what provenance records of it.

    record: method, mode, version, params, entry_key, n, paper, deterministic, metric_cost,
    fit cost, and what the task adds (Task.entry_info); the figures, cost notes and the
    per-instance files read it.
    """

    scores: object  # bench.leaderboard.EntryScores
    record: dict


@dataclass
class Finished:
    """What a task adds to the generic leaderboard: the table as written, notes, provenance, figures.

    `stat_notes` and `tables` come from the task's `statistics` (recomputable from per-instance
    scores: bench.restat); `notes` are the run's own (provenance lines, costs, figures).
    """

    df: object
    notes: list
    provenance: dict
    figures: list[Path]
    stat_notes: list = field(default_factory=list)
    tables: dict = field(default_factory=dict)


def metric_fns(registry, names) -> list:
    """The metrics a run scores: those it names, else every registered one meant for boards (`board`)."""
    if names:
        return [registry.get(n) for n in names]
    return [f for f in map(registry.get, registry.names()) if getattr(f, "board", True)]


class Task(Protocol):
    """A task kind's strategy: which registry, what a row explains, how results are stored and scored."""

    table: Table  # its board table: kind, stem, title, short label (bench.board)
    registry: object  # bench.contract.registry.Registry of its methods
    modes: tuple[str, ...]  # target modes, one leaderboard row per (method, mode); ("",) for none
    names: list[str]  # the configured methods
    cfg: object  # its config section

    def metric_fns(self) -> list: ...
    def metric_params(self) -> dict: ...
    def metric_subset(self, metric_fns: list) -> dict: ...
    def extra_metas(self) -> list: ...
    def targets(self, errs, mode: str, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...
    def call(self, method, x: torch.Tensor, target: torch.Tensor, contrast) -> Produced: ...
    def make_batch(self, ctx, records: list[dict], bound, entry): ...
    def valid(self, scores: dict, n: int) -> np.ndarray: ...
    def entry_info(self, ctx, entry) -> dict: ...
    def provenance_notes(self, metric_prov: dict) -> list[str]: ...
    def statistics(self, df, rows: list, metas: list, n_boot: int, seed: int) -> Statistics: ...
    def finish(self, ctx, df, finished: list[FinishedEntry]) -> Finished: ...

