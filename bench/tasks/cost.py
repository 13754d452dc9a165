"""What a counterfactual solver costs beyond its per-instance queries.

- model-cost ratios: each black-box solver's seconds over what its forward passes alone cost
  at the model's raw throughput measured in the same run;
- amortised cost: a solver that trains once in fit() (alibi_rl) pays `fit_queries` and
  `fit_seconds` for the whole entry; per error that is fit / n + the per-instance cost, and
  the break-even against another solver is the n where the two amortised costs meet.

Both count in one unit when the board has the `cost` metric (metrics/cost.py): forward-pass
equivalents, queries + r * grad_queries with r the backward/forward time ratio measured in the
run, so a back-propagation is no longer free beside a forward query. A fit's bill is its
forward rows (no solver back-propagates through the model in fit()). Without `cost` the lines
use queries, as before.
"""

from __future__ import annotations

import numpy as np

from bench.context import RunContext
from bench.contract.registry import SOLVERS


def model_cost_ratios(ctx: RunContext, rows: list, entries: list[dict]) -> dict:
    """The model's raw forward throughput in this run, and each black-box solver's time over it.

    ratio = mean seconds per instance / (mean queries per instance / raw rows per second):
    1.0 means the solver costs what its forward passes cost; white-box solvers also pay for
    backward passes, which a forward yardstick does not price, so they get no ratio.
    """
    tp = ctx.oracle.throughput(ctx.errors.x)
    ratios, earlier = {}, []
    for r, e in zip(rows, entries):
        if SOLVERS.get(e["method"]).white_box:
            continue
        if e["solved_now"] < e["n"]:  # resumed from the store: its seconds come from another run
            earlier.append(e["method"])
            continue
        sec, q = (float(np.nanmean(r.scores[k])) if k in r.scores else float("nan") for k in ("seconds", "queries"))
        if q > 0 and np.isfinite(sec):
            ratios[e["method"]] = round(sec / (q / tp["rows_per_s"]), 3)
    beside = [e["method"] for e in entries if e.get("in_background") and e["method"] in ratios]
    return dict(throughput=tp, seconds_over_forward_cost=ratios, timed_in_earlier_run=earlier,
                ran_beside_other_work=beside)


def model_cost_note(model_cost: dict) -> str:
    tp, ratios = model_cost["throughput"], model_cost["seconds_over_forward_cost"]
    text = (f"Model cost: the raw forward pass ran at {tp['rows_per_s']:,.0f} rows/s (batch {tp['batch_size']}) "
            f"in this run.")
    if ratios:
        text += (" Black-box solvers' seconds per instance over (queries per instance / that rate), "
                 "1.0 = no cost beyond the model's: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()) + ".")
    if model_cost.get("ran_beside_other_work"):
        text += (" " + ", ".join(model_cost["ran_beside_other_work"]) + " ran in a background thread beside the "
                 "attribution suite (its worker process is single-threaded): its seconds include that contention.")
    if model_cost["timed_in_earlier_run"]:
        text += (" No ratio for " + ", ".join(model_cost["timed_in_earlier_run"])
                 + ": resumed from the store, timed in an earlier run.")
    return text


def _mean(r, key: str) -> float:
    return float(np.nanmean(r.scores[key])) if key in r.scores else float("nan")


def amortised_columns(df, rows: list, entries: list[dict]):
    """Add fit and amortised-cost columns when some entry paid a one-off fit (else df unchanged).

    fit_queries / fit_seconds: what fit() cost for the entry; amortised_queries /
    amortised_seconds: fit / n + the mean per-instance cost over the n errors it ran on; with the
    `cost` metric also amortised_cost: fit_queries / n + the mean cost (forward-pass equivalents).
    """
    fit_q = [float(e.get("fit_queries", 0.0)) for e in entries]
    if not any(q > 0 for q in fit_q):
        return df, {}
    fit_s = [float(e.get("fit_seconds", 0.0)) for e in entries]
    priced = all("cost" in r.scores for r in rows)
    out = {}
    for i, (r, e) in enumerate(zip(rows, entries)):
        q, s = _mean(r, "queries"), _mean(r, "seconds")
        out[e["method"]] = dict(fit_queries=fit_q[i], fit_seconds=fit_s[i], queries=q, seconds=s, n=e["n"],
                                amortised_queries=fit_q[i] / e["n"] + q, amortised_seconds=fit_s[i] / e["n"] + s)
        if priced:
            c = _mean(r, "cost")
            out[e["method"]].update(cost=c, amortised_cost=fit_q[i] / e["n"] + c)
    df = df.copy()
    for col in ("fit_queries", "fit_seconds", "amortised_queries", "amortised_seconds") + ("amortised_cost",) * priced:
        df[col] = [out[e["method"]][col] for e in entries]
    return df, out


def break_even(fit_queries: float, per_instance: float, other_per_instance: float) -> float:
    """Errors after which a solver with a one-off fit spends fewer queries than `other` (inf if never)."""
    gain = other_per_instance - per_instance
    return float(np.ceil(fit_queries / gain)) if gain > 0 else float("inf")


def amortised_note(amortised: dict, ratio: float | None = None) -> list[str]:
    """One line per solver with a one-off fit: its bill, its amortised cost, its break-even.

    With `cost` on the board (each entry carries "cost") the per-error cost and the break-even are
    in forward-pass equivalents (a gradient query = 1 + `ratio` forwards, `ratio` named when given);
    otherwise in queries.
    """
    priced = bool(amortised) and all("cost" in a for a in amortised.values())
    key, unit = ("cost", "forward-pass equivalents") if priced else ("queries", "queries")
    lines = []
    free = {m: a for m, a in amortised.items() if a["fit_queries"] == 0 and np.isfinite(a[key])}
    for m, a in amortised.items():
        if a["fit_queries"] == 0:
            continue
        text = (f"Amortised cost: {m} paid {a['fit_queries']:,.0f} queries and {a['fit_seconds']:.0f} s once in fit "
                f"(training), then {a[key]:,.0f} {unit} per error: {a['amortised_' + key]:,.0f} {unit} "
                f"per error over these {a['n']} errors.")
        for other, b in free.items():
            n = break_even(a["fit_queries"], a[key], b[key])
            less = "Costs less than" if priced else "Fewer queries than"
            text += f" {less} {other} after {n:,.0f} error{'s' * (n != 1)}." if np.isfinite(n) else \
                f" {'Never costs less than' if priced else 'Never fewer queries than'} {other} ({b[key]:,.0f} per error)."
        lines.append(text)
    if lines and priced:
        r = f" r = {ratio:.2f} measured in this run" if ratio is not None else " r = the measured backward/forward ratio"
        lines.append(f"Cost unit: forward-pass equivalents, queries + r * grad_queries ({r.strip()}); a fit's bill is "
                     "its forward rows.")
    if lines:  # the cost columns the table above leaves out, per solver
        extra = " amortised cost / error |" if priced else ""
        lines += ["", "| method | queries / error | fit queries | fit seconds | amortised queries / error | "
                  "amortised seconds / error |" + extra, "|---|---|---|---|---|---|" + "---|" * priced]
        lines += [f"| {m} | {a['queries']:,.1f} | {a['fit_queries']:,.0f} | {a['fit_seconds']:,.1f} | "
                  f"{a['amortised_queries']:,.1f} | {a['amortised_seconds']:.3f} |"
                  + (f" {a['amortised_cost']:,.1f} |" if priced else "") for m, a in amortised.items()]
        lines.append("")
    return lines
