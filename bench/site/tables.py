"""The leaderboard tables of a board page: mean, CI interval and bar, n, significance marks, flags."""

from __future__ import annotations

import math

import pandas as pd

from bench.board import fmt, interval_digits
from bench.site.caveats import CONTROLS, MIN_N, is_control, shade_best, small_rows
from bench.site.families import families_in, family_of
from bench.site.html import esc, metric_label, metric_tip, num, sortable_table
from bench.stats import ALPHA

BAR_W, BAR_H = 72, 9


def _bar(lo: float, mean: float, hi: float, span: tuple[float, float]) -> str:
    """An inline SVG of a 95% CI (line) and mean (dot) on the column's common scale."""
    a, b = span
    if not all(math.isfinite(v) for v in (lo, mean, hi)) or not b > a:
        return ""

    def x(v: float) -> float:
        return 2 + (BAR_W - 4) * (v - a) / (b - a)

    return (f'<svg class="bar" width="{BAR_W}" height="{BAR_H}" viewBox="0 0 {BAR_W} {BAR_H}" aria-hidden="true">'
            f'<line x1="1" x2="{BAR_W - 1}" y1="{BAR_H / 2}" y2="{BAR_H / 2}" stroke="#e3e3e3"/>'
            f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{BAR_H / 2}" y2="{BAR_H / 2}" stroke="#0b5cad" '
            f'stroke-width="3"/><circle cx="{x(mean):.1f}" cy="{BAR_H / 2}" r="2.6" fill="#1b1b1b"/></svg>')


def _span(df: pd.DataFrame, name: str) -> tuple[float, float]:
    vals = [num(v) for c in (f"{name}_lo", f"{name}_hi", name) if c in df for v in df[c]]
    vals = [v for v in vals if math.isfinite(v)]
    return (min(vals), max(vals)) if vals else (math.nan, math.nan)


def _metric_cell(r: pd.Series, name: str, span: tuple[float, float], best: bool) -> tuple:
    """(data-value, HTML, class) of one cell: mean and bar, then [lo, hi], n when it differs, NaN count.

    `best`: shade it (`caveats.shade_best`: the CSV's mark, n >= 10, not a smaller subset, not flagged).
    """
    mean, lo, hi = r[name], r.get(f"{name}_lo", ""), r.get(f"{name}_hi", "")
    p_next = num(r.get(f"{name}_p_next", ""))
    p_adj = num(r.get(f"{name}_p_next_holm", r.get(f"{name}_p_next", "")))
    mark = '<span class="approx">≈ </span>' if best and not p_adj < ALPHA else ""
    extra = ""
    n_cell, n_row = r.get(f"{name}_n", ""), r.get("n", "")
    if n_cell not in ("", n_row):
        extra += f' <span class="cell-n">n={esc(n_cell)}</span>'
    n_nan = int(num(r.get(f"{name}_nan", "0")) or 0)
    if n_nan:
        extra += f' <span class="nan">{n_nan} NaN</span>'
    method = r.get(f"{name}_ci", "")
    if math.isfinite(num(lo)) and math.isfinite(num(hi)):
        d = interval_digits(num(lo), num(hi))
        interval = f"[{fmt(lo)}, {fmt(hi)}]" if d is None else f"[{num(lo):.{d}g}, {num(hi):.{d}g}]"
    elif method == "timing":
        interval = '<span title="one batch time / batch size: no interval">(batch time)</span>'
    elif method == "none" or (not method and math.isfinite(num(mean))):
        interval = '<span title="a constant sample or fewer than 2 values: no interval">(no CI)</span>'
    else:
        interval = ""
    html = (f'{mark}<span class="v">{fmt(mean)}</span>{_bar(num(lo), num(mean), num(hi), span)}'
            f'<span class="ci">{interval}{extra}</span>')
    if best:
        html = (f'<span title="best in this column among rows with n ≥ {MIN_N}; paired test against the runner-up: '
                f'p = {fmt(p_next)}, Holm-adjusted over the table = {fmt(p_adj)}">{html}</span>')
    return mean, html, "num best" if best else "num"


def board_table(df: pd.DataFrame, metrics: list[dict], table_id: str, flagged: dict | None = None) -> str:
    """One leaderboard (counterfactuals or attributions) as a sortable HTML table.

    Args:
        df: the leaderboard CSV, every cell as text (`bench.board.read_as_text`).
        metrics: the provenance's metric dicts (name, higher_is_better, valid_only, definition, version).
        table_id: the table's id.
        flagged: {metric: reason} the meta-evaluation flags (marked in the header, never shaded best).

    Returns:
        The table's HTML.
    """
    flagged = flagged or {}
    stem = table_id.removesuffix("-table")
    small = small_rows(df)
    shown = [m for m in metrics if m["name"] in df]
    with_mode = "mode" in df and bool((df["mode"].str.len() > 0).any())
    cols = [dict(label="method", name="method", numeric=False, tip="registry name of the solver or method; "
                 "flags under it: not better than the random control, version")]
    if with_mode:
        cols.append(dict(label="mode", name="mode", numeric=False, tip="attribution target: predicted (the wrong "
                         "class P), true (the true class Q), contrast (P against Q)"))
    cols.append(dict(label="n", name="n", numeric=True, first="descending",
                     tip="instances this row ran on / size of the error set; (subset) when fewer"))
    for m in shown:
        span = _span(df, m["name"])
        extra = f" Bars: 95% CI (line) and mean (dot) on one scale per column, {fmt(span[0])} to {fmt(span[1])}."
        label = metric_label(m)
        if m["name"] in flagged:
            extra = (f" FLAGGED by the meta-evaluation: {flagged[m['name']]}; do not rank methods by it alone "
                     f"(no best shading).{extra}")
            label += ' <span class="flagmark">⚑ flagged</span>'
        cols.append(dict(label=label, name=m["name"], numeric=True, tip=metric_tip(m, extra),
                         first="descending" if m.get("higher_is_better") else "ascending",
                         cls="flagged" if m["name"] in flagged else ""))
    rows = []
    for _, r in df.iterrows():
        flags = f' <span class="method-v">v{esc(r.get("version", ""))}</span>'
        if is_control(r["method"]):
            flags += f'<span class="control-tag" title="{esc(CONTROLS[r["method"]])}">control</span>'
        if r.get("beats_random", "") == "False":
            p = r.get("vs_random_p_holm", r.get("vs_random_p", ""))
            flags += (f'<span class="flag">not better than random on {esc(r.get("vs_random_metric") or "deletion_auc")} '
                      f'(Holm-adjusted p={fmt(p)})</span>')
        cells = [(r["method"], f"<strong>{esc(r['method'])}</strong>{flags}", "")]
        if with_mode:
            cells.append((r["mode"], esc(r["mode"]), ""))
        subset = ' <span class="flag">(subset)</span>' if r.get("subset") == "True" else ""
        cells.append((r["n"], f"{esc(r['n'])}/{esc(r.get('n_errors', ''))}{subset}", "num"))
        cells += [_metric_cell(r, m["name"], _span(df, m["name"]), shade_best(r, m["name"], small, flagged))
                  for m in shown]
        attrs = {"data-method": r["method"], "data-mode": r.get("mode", ""), "data-family": family_of(stem, r["method"])}
        if is_control(r["method"]):
            attrs["class"] = "control"
        if f"{r['method']}|{r.get('mode', '')}" in small:
            attrs["data-small"] = "true"
        rows.append((attrs, cells))
    return filter_bar(table_id, families_in(stem, df["method"])) + sortable_table(cols, rows, table_id)


def filter_bar(table_id: str, families: list[str]) -> str:
    """A text filter (method or mode contains it) and a method-family filter above a board table; site.js applies
    them and keeps them in the address (`<table id>.q=...`, `<table id>.family=...`) like the sort.

    Args:
        table_id: the table's id.
        families: the families of its rows (`families.families_in`), offered in the selector.

    Returns:
        The filter bar's HTML.
    """
    t = esc(table_id)
    options = '<option value="">all families</option>' + "".join(
        f'<option value="{esc(f)}">{esc(f)}</option>' for f in families)
    return (f'<div class="table-filter" data-for="{t}"><label for="{t}-q">Filter rows</label> '
            f'<input type="search" id="{t}-q" class="filter-q" placeholder="method, e.g. ig" autocomplete="off"> '
            f'<label for="{t}-family">family</label> <select id="{t}-family" class="filter-family">{options}</select> '
            f'<span class="filter-status muted" aria-live="polite"></span></div>')


def generic_table(df: pd.DataFrame, table_id: str) -> str:
    """Any CSV (zoo, meta-evaluation) as a sortable table; columns whose cells all parse as numbers sort numerically."""
    cols, numeric = [], {}
    for c in df.columns:
        vals = [v for v in df[c] if v != ""]
        numeric[c] = bool(vals) and all(math.isfinite(num(v)) or v.lower() in ("nan", "inf", "-inf") for v in vals)
        cols.append(dict(label=esc(c), name=c, numeric=numeric[c]))
    rows = [({}, [(r[c], esc(r[c]), "num" if numeric[c] else "") for c in df.columns])
            for _, r in df.iterrows()]
    return sortable_table(cols, rows, table_id)
