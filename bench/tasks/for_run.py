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


def mask_metrics(cfg) -> list[str]:
    """The metrics the run scores (of tasks that have methods) that need a ground-truth mask."""
    from bench.contract.registry import ATTR_METRICS, CF_METRICS
    from bench.tasks import metric_fns

    sections = ((ATTR_METRICS, cfg.attributions.metrics, cfg.attributions.methods),
                (CF_METRICS, cfg.counterfactuals.metrics, cfg.counterfactuals.solvers))
    return [f.metric_name for registry, names, methods in sections if methods
            for f in metric_fns(registry, names) if "mask" in f.needs]


def missing_mask(cfg) -> str | None:
    """The one-line refusal for a run whose metrics need a ground-truth mask (None: none needed).

    The caller decides whether the data has masks: bench.validate at the door for built-in
    datasets, bench.cell after loading a plugin dataset.
    """
    from bench.data import MASKED

    need = mask_metrics(cfg)
    if not need:
        return None
    verb = "needs" if len(need) == 1 else "need"
    return (f"{', '.join(need)} {verb} a ground-truth mask and dataset {cfg.dataset!r} has none "
            f"(datasets with one: {', '.join(MASKED)}); use one of them or leave the metrics out")
