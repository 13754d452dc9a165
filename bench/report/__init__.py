"""Figures next to the leaderboards (matplotlib, Agg backend), and the single-file report."""

from bench.report.figures import attribution_figures, counterfactual_figures

__all__ = ["attribution_figures", "counterfactual_figures"]
