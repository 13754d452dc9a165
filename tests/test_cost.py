"""Amortised cost of a solver that trains once in fit(): columns, break-even, note."""

import numpy as np
import pandas as pd

from bench.leaderboard import EntryScores
from bench.tasks.cost import amortised_columns, amortised_note, break_even


def _rows():
    idx = np.arange(10)
    gs = EntryScores("growing_spheres", "", "1", idx, np.ones(10, bool), dict(queries=np.full(10, 8000.0),
                                                                          seconds=np.full(10, 1.0)))
    rl = EntryScores("amortised", "", "1", idx, np.ones(10, bool), dict(queries=np.full(10, 1.0),
                                                                    seconds=np.full(10, 0.01)))
    entries = [dict(method="growing_spheres", n=10, fit_queries=0.0, fit_seconds=0.0),
               dict(method="amortised", n=10, fit_queries=400_000.0, fit_seconds=60.0)]
    return [gs, rl], entries


def test_no_fit_cost_leaves_the_table_alone():
    rows, entries = _rows()
    df = pd.DataFrame(dict(method=["growing_spheres", "amortised"]))
    out, info = amortised_columns(df, rows, [dict(e, fit_queries=0.0) for e in entries])
    assert info == {} and list(out.columns) == ["method"]


def test_amortised_columns_and_break_even():
    rows, entries = _rows()
    df = pd.DataFrame(dict(method=["growing_spheres", "amortised"]))
    out, info = amortised_columns(df, rows, entries)
    assert out["amortised_queries"].tolist() == [8000.0, 400_000 / 10 + 1.0]
    assert out["amortised_seconds"].tolist() == [1.0, 6.0 + 0.01]
    assert break_even(400_000, 1.0, 8000.0) == 51  # 51 * 7999 > 400,000 > 50 * 7999
    assert break_even(400_000, 9000.0, 8000.0) == float("inf")
    lines = amortised_note(info)
    assert "400,000 queries" in lines[0] and "after 51 errors" in lines[0]
    assert "| amortised | 1.0 | 400,000 | 60.0 | 40,001.0 | 6.010 |" in lines
