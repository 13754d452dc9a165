"""Black-box counterfactual solvers at equal query budgets: validity and median L2 at B queries per error.

Two kinds of solver are read differently from stored per-instance data (queries counted by the
oracle, validity and L2 from the store):

- a solver that stops at its first success (Growing Spheres, alibi's numerical-gradient
  solvers): a run with budget B returns what an unbounded run returns on the errors it solved
  within B rows, and nothing on the others, so one run at budget >= B gives the cell: valid and
  queries <= B ("read"). (Growing Spheres' sparsification step takes what its budget leaves, so
  a run at B itself can also solve errors whose search fit in B but whose sparsification did
  not: the read cell is then a lower bound on its validity.)
- an anytime solver (`anytime = True`: the ART attacks) spends its whole budget refining, so
  its stored counterfactual is what it had at its own max_queries: the cell at B is an entry
  run at max_queries == B ("run"); an entry run with a smaller budget is shown at larger B as
  what it had at its own budget (validity can only rise and L2 only fall with more queries:
  "at cap"); a larger budget says nothing about B ("-"), unless a caller passes the solvers'
  traces (CFResult.info["trace"]: (rows used, best L2) at each improvement), which give every
  B <= max_queries exactly ("trace").

The pipeline stores no traces: on a board, an attack appears at its configured budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.contract.registry import SOLVERS

BUDGETS = (100, 1_000, 10_000)


def _cap(entry: dict) -> float:
    q = (entry.get("params") or {}).get("max_queries")
    return float(q) if q is not None else float("inf")


def _cell(method: str, budget: int, source: str, ok: np.ndarray, l2: np.ndarray, n: int) -> dict:
    from bench.stats import proportion_ci

    c = proportion_ci(ok.astype(float)) if n else None
    return dict(method=method, budget=budget, source=source, n=n, n_valid=int(ok.sum()),
                validity=c.mean if c else np.nan, validity_lo=c.lo if c else np.nan,
                validity_hi=c.hi if c else np.nan,
                median_l2=float(np.median(l2[ok])) if ok.any() else np.nan)


def equal_budget_table(rows: list, entries: list[dict], budgets: tuple[int, ...] = BUDGETS,
                       traces: dict[str, list] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Validity (Wilson interval) and median L2 of each black-box solver at each budget, and Markdown lines.

    Args:
        rows: the task's EntryScores (per-instance scores: validity, l2, queries, grad_queries).
        entries: the matching entry dicts (method, params with max_queries where the solver has one).
        budgets: queries per error.
        traces: optional method -> per-instance traces [(rows used, best L2), ...] of an anytime
            solver (aligned to its row's instances); cells at B <= its max_queries then come from them.
    Returns:
        (DataFrame with one row per (method, budget): source, n, n_valid, validity, validity_lo,
        validity_hi, median_l2; the Markdown lines of the method x budget table and its legend).
    """
    traces, out = traces or {}, []
    for r, e in zip(rows, entries):
        cls = SOLVERS.get(e["method"])
        if cls.white_box or r.mode:
            continue
        s, n, cap = r.scores, len(r.index), _cap(e)
        valid = np.asarray(r.valid, bool)
        l2 = np.asarray(s.get("l2", np.full(n, np.nan)), float)
        spent = np.asarray(s.get("queries", np.zeros(n)), float) + np.asarray(s.get("grad_queries", np.zeros(n)), float)
        for b in budgets:
            if not getattr(cls, "anytime", False):
                src = "read" if b <= cap else "at cap"
                out.append(_cell(e["method"], b, src, valid & (spent <= b), l2, n))
            elif e["method"] in traces and b <= cap:
                best = np.array([min((d for used, d in t if used <= b), default=np.inf) for t in traces[e["method"]]])
                out.append(_cell(e["method"], b, "trace", np.isfinite(best), best, n))
            elif b == cap or b > cap:
                out.append(_cell(e["method"], b, "run" if b == cap else "at cap", valid, l2, n))
            else:
                out.append(dict(method=e["method"], budget=b, source="-", n=n))
    df = pd.DataFrame(out, columns=["method", "budget", "source", "n", "n_valid", "validity", "validity_lo",
                                    "validity_hi", "median_l2"])
    return df, markdown(df, budgets)


def markdown(df: pd.DataFrame, budgets: tuple[int, ...] = BUDGETS) -> list[str]:
    """The method x budget table: 'validity [Wilson 95%] / median L2 (source)' per cell."""
    if df.empty:
        return []
    head = "| method | " + " | ".join(f"{b:,} queries / error" for b in budgets) + " |"
    lines = ["", "**Equal query budgets** (black-box solvers): validity [95% Wilson interval] / median L2 of the "
             "valid counterfactuals, n errors per row.", "", head, "|---|" + "---|" * len(budgets)]
    for method, g in df.groupby("method", sort=False):
        cells = []
        for b in budgets:
            c = g[g.budget == b]
            if c.empty or c.iloc[0].source == "-" or pd.isna(c.iloc[0].validity):
                cells.append("-")
                continue
            c = c.iloc[0]
            l2 = "-" if pd.isna(c.median_l2) else f"{c.median_l2:.3g}"
            mark = "" if c.source in ("read", "run", "trace") else " (at its max_queries)"
            cells.append(f"{c.validity:.2f} [{c.validity_lo:.2f}, {c.validity_hi:.2f}] / {l2}{mark}")
        lines.append(f"| {method} (n={int(g.iloc[0].n)}) | " + " | ".join(cells) + " |")
    lines += ["", "A solver that stops at its first success is read from its run: valid and queries <= B "
              "(Growing Spheres' sparsification takes what its budget leaves, so its cell is a lower bound on a "
              "run at B). An attack (anytime: it refines until its budget is spent) shows the run at "
              "max_queries = B; '-' where it ran with a larger budget, '(at its max_queries)' where with a "
              "smaller one.", ""]
    return lines
