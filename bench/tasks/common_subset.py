"""Counterfactual solvers compared on the same instances: the common valid subset and paired tests.

The per-solver table averages each distance over the solver's own valid counterfactuals, so a
solver that fails on the hard errors looks closer than one that flips them. Here every
compared solver is scored on one set of errors: those every compared solver ran on and made
valid. Solvers with fewer than `MIN_N` valid counterfactuals are not compared; if the
intersection is still smaller than `MIN_N`, the solver with the fewest valid rows is left out
next, until it is not (or fewer than two remain). Every pair of compared solvers is tested on
every metric (paired sign-flip test over the common errors); all those tests are one family,
Holm-corrected.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.board import fmt, fmt_cell
from bench.leaderboard import MIN_BEST_N, EntryScores, MetricMeta
from bench.stats import ALPHA, cell, holm, paired_pvalue

MIN_N = MIN_BEST_N
SKIPPED = {"validity", "seconds"}  # validity is 1 on this subset by construction; seconds are batch timings


@dataclass
class Common:
    solvers: list  # the compared solvers, in board order
    left_out: dict  # solver -> why it is not compared
    index: np.ndarray  # test indices of the common valid subset
    table: pd.DataFrame  # one row per compared solver: mean / interval / n per metric, best marks
    pairs: pd.DataFrame  # metric, a, b, n, mean_diff (a - b), p, p_holm

    def markdown(self, metas: list[MetricMeta]) -> list[str]:
        """The board's section on the common subset (a table, the significant pairs, what was left out)."""
        out = ["", "## On the common valid subset", ""]
        left = "; ".join(f"{k} ({v})" for k, v in self.left_out.items())
        if self.table.empty:
            return out + [f"No comparison on a common subset: it needs two solvers with ≥ {MIN_N} valid "
                          f"counterfactuals on ≥ {MIN_N} shared errors" + (f" (not compared: {left})." if left else ".")]
        out += [f"Every compared solver on the same {len(self.index)} errors: those all of "
                f"{', '.join(self.solvers)} ran on and made valid (a solver needs ≥ {MIN_N} valid counterfactuals "
                "to be compared). Means here are comparable across rows; the table above averages each solver "
                "over its own valid rows."]
        if left:
            out += ["", f"Not compared: {left}."]
        shown = [m for m in metas if m.name in self.table]
        out += ["", "| solver | " + " | ".join(f"{m.name} {'↑' if m.higher_is_better else '↓'}" for m in shown) + " |",
                "|---|" + "---|" * len(shown)]
        for _, r in self.table.iterrows():
            cells = []
            for m in shown:
                text = fmt_cell(r, m.name)
                if r.get(f"{m.name}_best", False):
                    q = r.get(f"{m.name}_p_next_holm", np.nan)
                    text = f"**{text}**" if np.isfinite(q) and q < ALPHA else f"≈ **{text}**"
                cells.append(text)
            out.append(f"| {r['method']} | " + " | ".join(cells) + " |")
        sig = self.pairs[self.pairs["p_holm"] < ALPHA]
        out += ["", f"Paired tests: every pair of compared solvers on every metric, {len(self.pairs)} sign-flip tests "
                "over the common errors, one family, Holm-corrected (all of them with raw and adjusted p in "
                f"`counterfactuals_pairs.csv`). Bold: best of the column; ≈: not significantly better than the "
                f"runner-up after correction. {len(sig)} of {len(self.pairs)} pairs differ at adjusted p < {ALPHA}"
                + (":" if len(sig) else ".")]
        direction = {m.name: m.higher_is_better for m in metas}
        for metric, g in sig.groupby("metric", sort=False):
            parts = []
            for _, p in g.iterrows():
                better_a = (p["mean_diff"] > 0) == direction.get(metric, True)
                win, lose = (p["a"], p["b"]) if better_a else (p["b"], p["a"])
                parts.append(f"{win} < {lose}" if not direction.get(metric, True) else f"{win} > {lose}")
            out.append(f"- `{metric}`: " + ", ".join(parts) + f" (better first; adjusted p ≤ {fmt(g['p_holm'].max())})")
        return out


def compare(rows: list[EntryScores], metas: list[MetricMeta], n_boot: int = 1000, seed: int = 0) -> Common:
    """The common valid subset of the solvers in `rows`, each one's cells on it, and every paired test."""
    valid = {r.method: set(r.index[r.valid].tolist()) for r in rows}
    left_out = {m: f"{len(v)} valid" for m, v in valid.items() if len(v) < MIN_N}
    chosen = [r.method for r in rows if r.method not in left_out]
    common = set.intersection(*(valid[m] for m in chosen)) if chosen else set()
    while len(chosen) >= 2 and len(common) < MIN_N:
        drop = min(chosen, key=lambda m: len(valid[m]))
        left_out[drop] = f"{len(valid[drop])} valid; the common subset with it had {len(common)}"
        chosen.remove(drop)
        common = set.intersection(*(valid[m] for m in chosen))
    if len(chosen) < 2:
        return Common(chosen, left_out, np.array([], np.int64), pd.DataFrame(columns=["method", "n"]), _empty_pairs())
    index = np.array(sorted(common), np.int64)
    by_name = {r.method: r for r in rows}
    shown = [m for m in metas if m.name not in SKIPPED and all(m.name in by_name[s].scores for s in chosen)]
    at = {s: _at(by_name[s], index) for s in chosen}
    table = []
    for s in chosen:
        row = dict(method=s, n=len(index))
        for m in shown:
            c = cell(by_name[s].scores[m.name][at[s]], m.kind, n_boot=n_boot, seed=seed)
            row.update({m.name: c.mean, f"{m.name}_lo": c.lo, f"{m.name}_hi": c.hi, f"{m.name}_n": c.n,
                        f"{m.name}_nan": c.n_nan, f"{m.name}_ci": c.method})
        table.append(row)
    table = pd.DataFrame(table)
    pairs = []
    for m in shown:
        for a, b in itertools.combinations(chosen, 2):
            va, vb = by_name[a].scores[m.name][at[a]], by_name[b].scores[m.name][at[b]]
            ok = np.isfinite(va) & np.isfinite(vb)
            pairs.append(dict(metric=m.name, a=a, b=b, n=int(ok.sum()),
                              mean_diff=float(np.mean(va[ok] - vb[ok])) if ok.any() else np.nan,
                              p=paired_pvalue(va, vb)))
    pairs = pd.DataFrame(pairs) if pairs else _empty_pairs()
    pairs["p_holm"] = holm(pairs["p"].to_numpy(float)) if len(pairs) else []
    _mark_best(table, pairs, shown)
    return Common(chosen, left_out, index, table, pairs)


def _at(r: EntryScores, index: np.ndarray) -> np.ndarray:
    pos = {int(t): i for i, t in enumerate(r.index.tolist())}
    return np.array([pos[int(t)] for t in index], np.int64)


def _mark_best(table: pd.DataFrame, pairs: pd.DataFrame, shown: list[MetricMeta]) -> None:
    """Best row per metric and the Holm-adjusted p of its pair with the runner-up."""
    for m in shown:
        means = table[m.name].to_numpy(float)
        order = [i for i in np.argsort(-means if m.higher_is_better else means, kind="stable") if np.isfinite(means[i])]
        table[f"{m.name}_best"] = False
        table[f"{m.name}_p_next_holm"] = np.nan
        if len(order) < 2:
            continue
        a, b = table.loc[order[0], "method"], table.loc[order[1], "method"]
        hit = pairs[(pairs["metric"] == m.name) & (((pairs["a"] == a) & (pairs["b"] == b)) |
                                                    ((pairs["a"] == b) & (pairs["b"] == a)))]
        table.loc[order[0], f"{m.name}_best"] = True
        table.loc[order[0], f"{m.name}_p_next_holm"] = float(hit["p_holm"].iloc[0]) if len(hit) else np.nan


def _empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(columns=["metric", "a", "b", "n", "mean_diff", "p", "p_holm"])
