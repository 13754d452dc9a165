"""What a reader must know before trusting a board: accuracy floor, subsets, flags, controls, best marks,
and the board's finding in a few generated sentences (all read from the board's own files)."""

from __future__ import annotations

import math
import re

import pandas as pd

from bench.board import ATTRIBUTIONS, COUNTERFACTUALS, FLAGS_BEGIN, FLAGS_END, fmt, read_as_text, table
from bench.leaderboard import MIN_BEST_N
from bench.site.html import esc, num
from bench.stats import ALPHA

# A model below its dataset's floor makes too many (and too easy) errors for its board to say much about
# the methods: its errors are not the hard cases a good classifier gets wrong. Named per dataset, on the page.
ACCURACY_FLOORS = {"mnist": 0.99, "fashion-mnist": 0.90}
MIN_N = MIN_BEST_N  # the smallest n a best mark is given on (bench.leaderboard): below it a row is never shaded best
CONTROLS = {"random": "random control: the floor a real method must beat"}
# per table stem: the metrics the site's findings and cross-board summary rank by
HEADLINE = {COUNTERFACTUALS.stem: ("validity", "l2"), ATTRIBUTIONS.stem: ("del_morf_zeros", "del_lerf_zeros",
                                                                       "deletion_auc", "insertion_auc")}


def split_flags(md: str | None) -> tuple[str | None, dict[str, str], str]:
    """The Markdown without its meta-evaluation flags block, the flagged metrics and the block's source.

    Returns:
        (md without the block, {metric: reason}, the meta.md the block points at ("" when none)).
    """
    if not md or FLAGS_BEGIN not in md:
        return md, {}, ""
    head, _, rest = md.partition(FLAGS_BEGIN)
    block, _, tail = rest.partition(FLAGS_END)
    flags = dict(re.findall(r"^- `([^`]+)`: (.+)$", block, flags=re.M))
    source = re.search(r"\(([^)\s]*meta\.md)\)", block)
    return head + tail, flags, source.group(1) if source else ""


def is_control(method: str) -> bool:
    """Is this row a control (the random attribution), not a method to rank?"""
    return method in CONTROLS


def floor_of(dataset: str) -> float | None:
    """The dataset's accuracy floor (None for a dataset without one)."""
    return ACCURACY_FLOORS.get(dataset)


def below_floor(board: dict) -> bool:
    floor, acc = floor_of(board.get("dataset", "")), num(board.get("accuracy"))
    return floor is not None and math.isfinite(acc) and acc < floor


def small_rows(df: pd.DataFrame) -> set[str]:
    """Methods (method|mode) whose row ran on fewer errors than the table's fullest row or on fewer than MIN_N."""
    n = pd.to_numeric(df["n"], errors="coerce")
    top = n.max()
    return {f"{r['method']}|{r.get('mode', '')}" for (_, r), k in zip(df.iterrows(), n) if k < top or k < MIN_N}


def shade_best(r: pd.Series, name: str, small: set[str], flagged: dict) -> bool:
    """A cell is shaded best only if the CSV marks it (`<metric>_best`), its n >= MIN_N, the row is not a
    smaller subset than the table's others, the row is no control and the column is not flagged."""
    if r.get(f"{name}_best", "") != "True" or name in flagged or is_control(r["method"]):
        return False
    n_cell = num(r.get(f"{name}_n", "") or r.get("n", ""))
    return n_cell >= MIN_N and f"{r['method']}|{r.get('mode', '')}" not in small


def _row_name(r: pd.Series) -> str:
    return f"<strong>{esc(r['method'])}</strong>" + (f" ({esc(r['mode'])})" if r.get("mode") else "")


def _interval(r: pd.Series, name: str) -> str:
    lo, hi = r.get(f"{name}_lo", ""), r.get(f"{name}_hi", "")
    return f"{fmt(r[name])} [{fmt(lo)}, {fmt(hi)}]" if lo != "" and hi != "" else f"{fmt(r[name])} (no interval)"


def metric_finding(df: pd.DataFrame, m: dict, flagged: dict) -> str:
    """One sentence: the best row on a headline metric, its interval, and whether its lead holds after Holm."""
    name = m["name"]
    arrow = "↑" if m.get("higher_is_better") else "↓"
    if name in flagged:
        return f"<code>{esc(name)}</code> {arrow} is flagged by the meta-evaluation ({esc(flagged[name])}): not ranked here."
    small = small_rows(df)
    marked = [r for _, r in df.iterrows() if r.get(f"{name}_best", "") == "True"]
    best = [r for r in marked if shade_best(r, name, small, flagged)]
    if marked and not best:
        r = marked[0]
        return (f"<code>{esc(name)}</code> {arrow}: the board's best, {_row_name(r)} {_interval(r, name)}, ran on "
                f"{esc(r['n'])} errors, fewer than the table's fullest rows (or is a control): not ranked here.")
    if not best:
        return (f"<code>{esc(name)}</code> {arrow}: no row is marked best (a best mark needs two rows scored on "
                f"≥ {MIN_N} errors).")
    r = best[0]
    p = num(r.get(f"{name}_p_next_holm", r.get(f"{name}_p_next", "")))
    # the runner-up the board's test used (bench.leaderboard.best_vs_next): the next row in the column's order
    # among those with a finite mean scored on >= MIN_N instances
    rivals = df[[num(x[name]) == num(x[name]) and num(x.get(f"{name}_n", "") or x["n"]) >= MIN_N
                 for _, x in df.iterrows()]]
    rivals = rivals.assign(_v=pd.to_numeric(rivals[name], errors="coerce"))
    rivals = rivals.sort_values("_v", ascending=not m.get("higher_is_better"), kind="stable")
    runner = next((x for _, x in rivals.iterrows() if (x["method"], x.get("mode", "")) != (r["method"], r.get("mode", ""))),
                  None)
    vs = f"; runner-up {_row_name(runner)} {_interval(runner, name)}" if runner is not None else ""
    verdict = (f"the lead holds after Holm correction over the table (adjusted p = {fmt(p)})" if p < ALPHA else
               f"the lead is <em>not</em> significant after Holm correction (adjusted p = {fmt(p)})"
               if math.isfinite(p) else "<em>not</em> tested against a runner-up")
    return f"<code>{esc(name)}</code> {arrow}: best {_row_name(r)} {_interval(r, name)}{vs}; {verdict}."


def caveat_lines(board: dict) -> list[str]:
    """The banner's lines (HTML): accuracy below the dataset's floor, rows on small subsets."""
    lines = []
    floor = floor_of(board.get("dataset", ""))
    if below_floor(board):
        lines.append(f"The model's test accuracy is {fmt(board['accuracy'])}, below the {esc(board['dataset'])} floor of "
                     f"{floor:g} (<code>bench.site.caveats.ACCURACY_FLOORS</code>): its {esc(board.get('n_errors', ''))} "
                     "errors are not the hard cases of a good classifier; read its rankings as about this model only.")
    n_errors = num(board.get("n_errors"))
    for stem, p in board["parts"].items():
        df = p["csv"]
        n = pd.to_numeric(df["n"], errors="coerce")
        if math.isfinite(n_errors) and n.max() < n_errors:
            lines.append(f"{table(stem).title}: every row ran on a subset, at most {int(n.max())} of the "
                         f"{int(n_errors)} errors ({n.max() / n_errors:.0%}); the first errors in test-index order.")
        small = sorted(small_rows(df))
        if small:
            names = ", ".join(f"{k.split('|')[0]}{' (' + k.split('|')[1] + ')' if k.split('|')[1] else ''} "
                              f"(n={df[(df['method'] + '|' + df.get('mode', '')) == k]['n'].iloc[0]})" for k in small)
            lines.append(f"{table(stem).title}: rows on fewer errors than the others or fewer than {MIN_N}, never "
                         f"shaded best: {esc(names)}.")
    return lines


def headline(board: dict, metas: dict) -> str:
    """The board's finding: accuracy against the floor, the best method per headline metric, flags, subsets.

    Args:
        board: a board dict of `build.load_board` (parts carry `flags`).
        metas: stem -> the provenance's metric dicts.

    Returns:
        HTML of a short section (a paragraph and a list).
    """
    floor = floor_of(board.get("dataset", ""))
    acc = fmt(board.get("accuracy")) if board.get("accuracy") != "" else "unknown"
    where = ("" if floor is None else f", {'below' if below_floor(board) else 'at or above'} the "
             f"{esc(board['dataset'])} floor of {floor:g}")
    items = []
    for stem, p in board["parts"].items():
        df, flagged = p["csv"], p.get("flags", {})
        by_name = {m["name"]: m for m in metas.get(stem, [])}
        found = [metric_finding(df, by_name[k], flagged) for k in HEADLINE.get(stem, ()) if k in by_name and k in df]
        n = pd.to_numeric(df["n"], errors="coerce")
        size = (f"{len(df)} rows on {int(n.min())}–{int(n.max())} of {esc(board.get('n_errors', ''))} errors"
                if n.min() != n.max() else f"{len(df)} rows on {int(n.max())} of {esc(board.get('n_errors', ''))} errors")
        flags = (f" Flagged by the meta-evaluation: {', '.join(f'<code>{esc(k)}</code>' for k in flagged)}."
                 if flagged else "")
        common = board["folder"] / f"{stem}_common.csv" if board.get("folder") else None
        if common is not None and common.exists() and small_rows(df):
            cdf = read_as_text(common)
            found.append(f"Rows ran on different subsets, so their means are not comparable: the common valid subset "
                         f"compares {', '.join(f'<strong>{esc(x)}</strong>' for x in cdf['method'])} on the same "
                         f"{esc(cdf['n'].iloc[0])} errors (below the table)." if len(cdf) else
                         "Rows ran on different subsets, so their means are not comparable, and no two solvers share "
                         f"≥ {MIN_N} valid counterfactuals for a common-subset comparison.")
        sub = "".join(f"<li>{x}</li>" for x in found)
        items.append(f'<li><a href="#{stem}">{table(stem).title}</a> ({size}).{flags}<ul>{sub}</ul></li>')
    return (f'<section class="headline" id="headline"><p>Model test accuracy <strong>{acc}</strong>{where}.</p>'
            f'<ul>{"".join(items)}</ul></section>')
