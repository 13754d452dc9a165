"""Attributions: every configured method x target mode on the errors.

Target modes: "predicted" explains the wrong class P the model chose; "true" explains the
true class Q; "contrast" explains P against Q ("why P rather than Q?": the method gets
`contrast=Q`). Each (method, mode) is one leaderboard row, checked against the random control.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from bench import board, leaderboard
from bench.config import TARGET_MODES
from bench.context import RunContext
from bench.contract.metrics import AttrBatch
from bench.contract.registry import ATTR_METRICS, ATTRIBUTIONS
from bench.stats import ALPHA, holm, paired_pvalue
from bench.tasks import Finished, FinishedEntry, Produced, Statistics, metric_fns

CONTROL = "random"
# the control test's metric: the headline deletion, or RISE's deletion_auc on a board that lacks it
SANITY_METRICS = ("del_morf_zeros", "deletion_auc")
log = logging.getLogger("bench")


class AttributionTask:
    table = board.ATTRIBUTIONS
    registry = ATTRIBUTIONS

    def __init__(self, ctx: RunContext) -> None:
        self.cfg = ctx.cfg.attributions
        self.names = list(self.cfg.methods)
        self.modes = tuple(self.cfg.targets)

    def metric_fns(self) -> list:
        return metric_fns(ATTR_METRICS, self.cfg.metrics)

    def metric_params(self) -> dict:
        return self.cfg.metric_params

    def metric_subset(self, metric_fns: list) -> dict:
        """metric -> first n errors: from what the metric needs (subset_by_need), then per metric."""
        out = {}
        for f in metric_fns:
            cuts = [self.cfg.subset_by_need[need] for need in f.needs if need in self.cfg.subset_by_need]
            if cuts:
                out[f.metric_name] = int(min(cuts))
        return {**out, **self.cfg.metric_subset}

    @staticmethod
    def extra_metas() -> list:
        return [leaderboard.MetricMeta("seconds", False, False,
                                       "wall time of the method per instance (batch time / batch size)", "1",
                                       "timing")]

    @staticmethod
    def targets(errs, mode: str, pos: torch.Tensor):
        if mode == "predicted":
            return errs.pred[pos], None
        if mode == "true":
            return errs.true[pos], None
        if mode == "contrast":  # P against the counterfactual target: Q for an error, the runner-up for a correct row
            return errs.pred[pos], errs.target[pos]
        raise ValueError(f"unknown attribution target mode {mode!r} ({' | '.join(TARGET_MODES)})")

    @staticmethod
    def call(method, x: torch.Tensor, explained: torch.Tensor, contrast) -> Produced:
        attr = method(x, explained, contrast).attr
        return Produced(attr, torch.ones(len(x), dtype=torch.bool), [""] * len(x))

    @staticmethod
    def make_batch(ctx: RunContext, records: list[dict], bound, entry) -> AttrBatch:
        pos = ctx.errors.position(torch.tensor([r["test_index"] for r in records]))
        contrast = None if records[0]["contrast"] is None else torch.tensor([r["contrast"] for r in records])
        dev_contrast = None if contrast is None else contrast.to(ctx.device)

        def explain_fn(x: torch.Tensor, explained: torch.Tensor) -> torch.Tensor:
            # x: the batch's own rows, perturbed (a contrast class belongs to its row: never dropped)
            if dev_contrast is not None and len(dev_contrast) != len(x):
                raise ValueError(f"explain_fn got {len(x)} rows for a batch of {len(dev_contrast)} with contrast "
                                 "classes: re-explain the batch's rows in their order")
            return bound.get()(x.to(ctx.device), explained.to(ctx.device), dev_contrast).attr

        return AttrBatch(x=ctx.errors.x[pos].to(ctx.device),
                         attr=torch.from_numpy(np.stack([r["artifact"] for r in records])).to(ctx.device),
                         explained=torch.tensor([r["explained"] for r in records]).to(ctx.device),
                         seconds=torch.tensor([r["seconds"] for r in records], dtype=torch.float64),
                         contrast=dev_contrast, method=entry.name, explain_fn=explain_fn,
                         mask=ctx.errors.mask_at(pos, ctx.device))

    @staticmethod
    def valid(scores: dict, n: int) -> np.ndarray:
        return np.ones(n, bool)

    @staticmethod
    def entry_info(ctx: RunContext, entry) -> dict:
        return {}

    @staticmethod
    def provenance_notes(metric_prov: dict) -> list[str]:
        """Lines from what the metrics recorded: what each removal operator leaks."""
        from bench.tasks.quality import leakage_note

        return leakage_note(metric_prov.get("removal_leakage") or {})

    @staticmethod
    def statistics(df, rows: list, metas: list, n_boot: int, seed: int) -> Statistics:
        """What the board adds from the per-instance scores alone: each row against the random control."""
        sanity = sanity_against_control(rows)
        if sanity:
            df["beats_random"] = [sanity.get((r.method, r.mode), {}).get("beats", None) for r in rows]
            df["vs_random_p"] = [sanity.get((r.method, r.mode), {}).get("p", np.nan) for r in rows]
            df["vs_random_p_holm"] = [sanity.get((r.method, r.mode), {}).get("p_holm", np.nan) for r in rows]
            df["vs_random_metric"] = [sanity.get((r.method, r.mode), {}).get("metric", "") for r in rows]
        return Statistics(df, _sanity_notes(sanity),
                          dict(sanity_vs_random={f"{m}/{mode}": v for (m, mode), v in sanity.items()}), {})

    def finish(self, ctx: RunContext, df, finished: list[FinishedEntry]) -> Finished:
        rows, entries = [f.scores for f in finished], [f.record for f in finished]
        from bench.report import attribution_figures
        from bench.scoring import metric_meta

        metas = [metric_meta(f) for f in self.metric_fns()] + self.extra_metas()
        stats = self.statistics(df, rows, metas, ctx.cfg.n_bootstrap, ctx.cfg.seed)
        _warn_failures(stats.provenance["sanity_vs_random"])
        figures = attribution_figures(ctx, entries, ctx.out_dir)
        notes = _subset_notes(self.metric_subset(self.metric_fns()))
        prov = dict(stats.provenance, metric_seconds_per_100=_cost_per_100(entries))
        return Finished(stats.df, notes, prov, figures, stats.notes, stats.tables)


def sanity_metric(rows: list) -> str | None:
    """The control test's metric: the first of SANITY_METRICS the random control's rows carry."""
    have = [r.scores for r in rows if r.method == CONTROL]
    return next((m for m in SANITY_METRICS if have and all(m in s for s in have)), None)


def sanity_against_control(rows: list) -> dict:
    """Per (method, mode): does it beat the random control on the headline deletion (sanity_metric)?

    A paired sign-flip test per row on the errors both share; the board's rows are one family,
    Holm-corrected (`p_holm`); `beats` = better mean and adjusted p < 0.05.
    """
    metric = sanity_metric(rows)
    control = {r.mode: r for r in rows if r.method == CONTROL and metric in r.scores}
    out = {}
    for r in rows:
        c = control.get(r.mode)
        if c is None or r.method == CONTROL or metric not in r.scores:
            continue
        common, ia, ib = np.intersect1d(r.index, c.index, return_indices=True)
        a, b = r.scores[metric][ia], c.scores[metric][ib]
        ok = np.isfinite(a) & np.isfinite(b)
        out[(r.method, r.mode)] = dict(metric=metric, p=paired_pvalue(a, b), n=int(ok.sum()),
                                       deletion=float(np.nanmean(a[ok])) if ok.any() else float("nan"),
                                       random=float(np.nanmean(b[ok])) if ok.any() else float("nan"))
    for v, q in zip(out.values(), holm([v["p"] for v in out.values()])):
        v["p_holm"] = float(q)
        v["beats"] = bool(v["deletion"] < v["random"] and q < ALPHA)
    return out


def _warn_failures(sanity: dict) -> None:
    for key, v in sanity.items():
        m, mode = key.split("/", 1) if isinstance(key, str) else key
        if not v["beats"]:
            log.warning("%s (%s) is no better than the random control on %s (%.3f vs %.3f, Holm-adjusted p=%.3g)",
                        m, mode, v.get("metric", "deletion_auc"), v["deletion"], v["random"], v["p_holm"])


def _sanity_notes(sanity: dict) -> list[str]:
    if not sanity:
        return []
    metric = next(iter(sanity.values())).get("metric", "deletion_auc")
    bad = [f"{m} ({mode})" for (m, mode), v in sanity.items() if not v["beats"]]
    return ["", f"Sanity: {len(sanity) - len(bad)} of {len(sanity)} method/mode rows beat the random control on "
            f"{metric} (paired sign-flip test on the errors both share; the {len(sanity)} tests are one "
            "family, Holm-corrected, adjusted p < 0.05; `vs_random_p` raw, `vs_random_p_holm` adjusted)"
            + (f"; NOT: {', '.join(bad)}." if bad else ".")]


def _subset_notes(subset: dict) -> list[str]:
    if not subset:
        return []
    parts = ", ".join(f"{m} on the first {n}" for m, n in sorted(subset.items()))
    return ["", f"Costly re-explaining metrics ran on a fixed subset of the errors ({parts}); "
            "their CSV `<metric>_n` gives the count."]


def _cost_per_100(entries: list[dict]) -> dict:
    """Each metric's mean cost in seconds per 100 instances over all methods (from the store)."""
    total: dict[str, list[float]] = {}
    for e in entries:
        for m, c in e["metric_cost"].items():
            t = total.setdefault(m, [0, 0.0])
            t[0] += c["n"]
            t[1] += c["seconds"]
    return {m: round(100 * s / n, 3) for m, (n, s) in total.items() if n}
