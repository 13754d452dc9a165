"""The equal-budget table: first-success solvers read from their queries, anytime attacks by run or trace."""

from __future__ import annotations

import numpy as np
import pytest

from bench.leaderboard import EntryScores
from bench.tasks.budget import equal_budget_table


def _row(method, valid, l2, queries, grad=None):
    n = len(valid)
    return EntryScores(method, "", "1", np.arange(n), np.array(valid, bool),
                       dict(l2=np.array(l2, float), queries=np.array(queries, float),
                            grad_queries=np.zeros(n) if grad is None else np.array(grad, float)))


def test_first_success_read_anytime_by_run_white_box_left_out():
    rows = [_row("growing_spheres", [1, 1, 1, 0], [0.5, 0.7, 0.9, 3.0], [80, 900, 9000, 50000]),
            _row("hopskipjump", [1, 1, 1, 1], [0.2, 0.3, 0.4, 0.5], [1000] * 4),
            _row("gradient", [1, 1, 1, 1], [0.1] * 4, [7] * 4, [7] * 4)]
    entries = [dict(method="growing_spheres", params=dict(max_queries=50_000)),
               dict(method="hopskipjump", params=dict(max_queries=1000)),
               dict(method="gradient", params={})]
    df, lines = equal_budget_table(rows, entries)
    gs = df[df.method == "growing_spheres"].set_index("budget")
    assert gs.validity.tolist() == [0.25, 0.5, 0.75] and gs.source.tolist() == ["read"] * 3
    assert gs.median_l2.tolist() == [0.5, 0.6, 0.7]
    assert gs.loc[100].validity_lo == pytest.approx(0.0456, abs=1e-3)  # Wilson 1 of 4
    hs = df[df.method == "hopskipjump"].set_index("budget")
    assert hs.source.tolist() == ["-", "run", "at cap"]
    assert hs.loc[1000].validity == 1.0 and hs.loc[1000].median_l2 == pytest.approx(0.35)
    assert "gradient" not in set(df.method)
    table = [line for line in lines if line.startswith("| hopskipjump")][0]
    assert table.startswith("| hopskipjump (n=4) | - | 1.00 [") and "(at its max_queries)" in table


def test_traces_give_every_budget_up_to_the_cap():
    rows = [_row("boundary_attack", [1, 1], [0.3, 0.6], [10_000, 10_000])]
    entries = [dict(method="boundary_attack", params=dict(max_queries=10_000))]
    traces = {"boundary_attack": [[(2, 5.0), (150, 2.0), (5000, 0.3)], [(900, 4.0), (9000, 0.6)]]}
    df, _ = equal_budget_table(rows, entries, traces=traces)
    got = df.set_index("budget")
    assert got.source.tolist() == ["trace"] * 3
    assert got.validity.tolist() == [0.5, 1.0, 1.0]
    assert got.median_l2.tolist() == [5.0, 3.0, pytest.approx(0.45)]


def test_plausibility_note_names_the_models_quality():
    from bench.tasks.quality import plausibility_note

    prov = dict(autoencoders=dict(test_recon_sq_l2={"0": 9.33, "1": 2.99, "8": 15.99, "all": 9.47}),
                second_classifier=dict(test_accuracy=0.9842))
    (line,) = plausibility_note(prov)
    assert "from 2.99 (class 1) to 15.99 (class 8)" in line and "9.47" in line and "0.9842" in line
    assert plausibility_note({}) == []
