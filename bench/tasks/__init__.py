"""The two task strategies the pipeline (bench/pipeline.py) runs: counterfactuals and attributions."""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
