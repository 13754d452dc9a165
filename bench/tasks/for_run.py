"""Which tasks a run has: the configured ones with at least one method, in the order boards are written."""

from __future__ import annotations

from bench.tasks import Task
from bench.tasks.attributions import AttributionTask
from bench.tasks.counterfactuals import CounterfactualTask


def tasks(ctx) -> list[Task]:
    """The run's tasks that have methods: attributions, then counterfactuals (the order boards are written)."""
    return [t for t in (AttributionTask(ctx), CounterfactualTask(ctx)) if t.names]


def task_of(ctx, kind: str) -> Task:
    """The run's task of kind `kind` ("counterfactual" | "attribution")."""
    return next(t for t in tasks(ctx) if t.table.kind == kind)
