"""Counterfactuals: every configured solver moves each error toward its true class.

The strategy the pipeline needs (targets, storing x_cf, rebuilding a CFBatch) plus what the
counterfactual leaderboard adds: validity-gated rows, the one-off fit cost of amortised
solvers, the model-cost ratios, overlay and budget figures.
"""

from __future__ import annotations

import numpy as np
import torch

from bench import board
from bench.context import RunContext
from bench.contract.metrics import CFBatch
from bench.contract.registry import CF_METRICS, SOLVERS
from bench.tasks import Finished, FinishedEntry, Produced, Statistics, metric_fns
from bench.tasks.common_subset import compare


class CounterfactualTask:
    table = board.COUNTERFACTUALS
    registry = SOLVERS
    modes = ("",)

    def __init__(self, ctx: RunContext) -> None:
        self.cfg = ctx.cfg.counterfactuals
        self.names = list(self.cfg.solvers)

    def metric_fns(self) -> list:
        return metric_fns(CF_METRICS, self.cfg.metrics)

    def metric_params(self) -> dict:
        return {}

    def metric_subset(self, metric_fns: list) -> dict:
        return {}

    def extra_metas(self) -> list:
        return []

    @staticmethod
    def targets(errs, mode: str, pos: torch.Tensor):
        return errs.target[pos], None  # the true class of an error (the runner-up of a correct row)

    @staticmethod
    def call(solver, x: torch.Tensor, target: torch.Tensor, contrast) -> Produced:
        r = solver(x, target)
        if r.x_cf.dtype != x.dtype:
            raise TypeError(f"solver returned x_cf of dtype {r.x_cf.dtype} for x of {x.dtype}")
        return Produced(r.x_cf, r.success, r.reason, r.seconds)

    @staticmethod
    def make_batch(ctx: RunContext, records: list[dict], bound, entry) -> CFBatch:
        """Rebuild what the metrics need from stored records (probabilities via the metric oracle)."""
        pos = ctx.errors.position(torch.tensor([r["test_index"] for r in records]))
        x_cf = torch.from_numpy(np.stack([r["artifact"] for r in records])).to(ctx.device)
        col = lambda k: torch.tensor([r[k] for r in records], dtype=torch.float64)  # noqa: E731
        return CFBatch(x=ctx.errors.x[pos].to(ctx.device), x_cf=x_cf, target=ctx.errors.target[pos].to(ctx.device),
                       probs_cf=ctx.metric_ctx.oracle.probs(x_cf), queries=col("queries"),
                       grad_queries=col("grad_queries"), seconds=col("seconds"), index=ctx.errors.index[pos],
                       mask=ctx.errors.mask_at(pos, ctx.device))

    @staticmethod
    def valid(scores: dict, n: int) -> np.ndarray:
        return scores["validity"] > 0.5 if "validity" in scores else np.ones(n, bool)

    @staticmethod
    def entry_info(ctx: RunContext, entry) -> dict:
        return dict(solved_now=ctx.solved_now.get(entry.name, 0), in_background=entry.name in ctx.background)

    @staticmethod
    def provenance_notes(metric_prov: dict) -> list[str]:
        """Lines from what the metrics recorded: the plausibility models' own quality."""
        from bench.tasks.quality import plausibility_note

        return plausibility_note(metric_prov.get("plausibility") or {})

    @staticmethod
    def statistics(df, rows: list, metas: list, n_boot: int, seed: int) -> Statistics:
        """What the board adds from the per-instance scores alone: the common valid subset and its paired tests."""
        common = compare(rows, metas, n_boot, seed)
        prov = dict(common_subset=dict(solvers=common.solvers, left_out=common.left_out, n=len(common.index),
                                       test_index=common.index.tolist(), pair_tests=len(common.pairs)))
        stem = board.COUNTERFACTUALS.stem
        tables = {f"{stem}_common": common.table, f"{stem}_pairs": common.pairs}
        return Statistics(df, common.markdown(metas), prov, tables)

    def finish(self, ctx: RunContext, df, finished: list[FinishedEntry]) -> Finished:
        rows, entries = [f.scores for f in finished], [f.record for f in finished]
        from bench.report import counterfactual_figures
        from bench.scoring import metric_meta
        from bench.tasks.budget import equal_budget_table
        from bench.tasks.cost import amortised_columns, amortised_note, model_cost_note, model_cost_ratios

        df, amortised = amortised_columns(df, rows, entries)
        figures = counterfactual_figures(ctx, entries, ctx.out_dir)
        model_cost = model_cost_ratios(ctx, rows, entries)
        ratio = (ctx.metric_ctx.memo.get("cost/backward_over_forward") or {}).get("ratio")
        notes = [model_cost_note(model_cost), *amortised_note(amortised, ratio=ratio)]
        budget, budget_lines = equal_budget_table(rows, entries)
        notes += budget_lines
        stats = self.statistics(df, rows, [metric_meta(f) for f in self.metric_fns()], ctx.cfg.n_bootstrap,
                                ctx.cfg.seed)
        tables = dict(stats.tables, **({f"{self.table.stem}_equal_budget": budget} if len(budget) else {}))
        return Finished(stats.df, notes, dict(model_cost=model_cost, amortised=amortised, **stats.provenance),
                        figures, stats.notes, tables)
