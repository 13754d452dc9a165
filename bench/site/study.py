"""Designed pages for the tables that are not boards: a study (model zoo) as a backbone x attention grid,
a meta-evaluation as heatmap + separation chart + definitions, and any other CSV folder as sortable tables."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from bench.board import ATTRIBUTIONS, COUNTERFACTUALS, fmt, read_as_text
from bench.site.comparison import sections as common_sections
from bench.site.figures import figure
from bench.site.html import esc, inline_md, num, page
from bench.site.tables import generic_table
from bench.truth import SECTION as TRUTH_SECTION

# the meta-evaluation's per-separation-test columns (meta_separation.csv), defined here as in bench/meta.py
SEPARATION_COLUMNS = {
    "metric": "the metric tested", "method": "method/mode tested against the random control",
    "n": "errors both share", "mean_diff": "mean per-error difference, oriented so that > 0 = better than random",
    "d_z": "paired effect size: mean difference / SD of the differences", "p": "two-sided sign-flip p (uncorrected)",
    "board": "which board (0 = the published one, then the seed boards in order)",
    "p_holm": "Holm-adjusted p within the metric's family", "p_bh": "Benjamini-Hochberg-adjusted p within the family",
    "separated": "p_bh < 0.05", "separated_holm": "p_holm < 0.05", "separated_raw": "p < 0.05",
}
# the meta-evaluation's per-task tables (bench.meta.write: meta_<table stem>.csv)
META_ATTR, META_CF = (f"meta_{t.stem}.csv" for t in (ATTRIBUTIONS, COUNTERFACTUALS))
META_TRUTH = "meta_truth.csv"  # bench.truth's table, written by bench.meta.write on boards with a ground-truth mask


def folder_kind(folder: Path) -> str:
    """'study' (a study.csv), 'meta' (a meta-evaluation's meta_*.csv) or 'tables' (anything else)."""
    if (folder / "study.csv").exists():
        return "study"
    if (folder / META_ATTR).exists() or (folder / META_CF).exists():
        return "meta"
    return "tables"


def _md_sections(md: str) -> tuple[str, dict[str, list[str]]]:
    """A Markdown file's title and its lines per '## ' section ('' = before the first)."""
    title, sections, cur = "", {"": []}, ""
    for ln in md.splitlines():
        if ln.startswith("# ") and not title:
            title = ln[2:].strip()
        elif ln.startswith("## "):
            cur = ln[3:].strip()
            sections[cur] = []
        else:
            sections[cur].append(ln)
    return title, sections


def _paras(lines: list[str]) -> str:
    return "".join(f"<p>{inline_md(ln)}</p>" for ln in lines if ln.strip() and not ln.startswith(("|", "![", "<!--")))


def _downloads(files: list[str], prefix: str) -> str:
    return '<p class="downloads">Download: ' + " ".join(
        f'<a href="{esc(prefix + f)}" download>{esc(f)}</a>' for f in files) + "</p>"


def _cell_value(r: pd.Series, col: str) -> tuple[float, str]:
    v, lo, hi = num(r.get(col, "")), r.get(f"{col}_lo", ""), r.get(f"{col}_hi", "")
    if not math.isfinite(v):
        return v, "–"
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if lo != "" and hi != "" else ""
    return v, f'<span class="v">{fmt(v)}</span><span class="ci">{ci}</span>'


def study_page(folder: Path, rel: str, board_ids: dict[str, str], depth: int) -> str:
    """The zoo: per headline score a backbone x attention grid of the mean over seeds [t interval], with each
    model's test accuracy and links to its seed boards; a score selector (kept in the URL); the figure.

    Args:
        folder: the study folder (study.csv, study.md, study_quality.png).
        rel: its path below the leaderboards root.
        board_ids: board title -> site id (to link each cell's seed boards).
        depth: how many folders below the site root the page lives.
    """
    df = read_as_text(folder / "study.csv")
    md = (folder / "study.md").read_text() if (folder / "study.md").exists() else ""
    title, sections = _md_sections(md)
    heads = {m.group(1): m.group(0) for ln in sections.get("Headline", [])
             if (m := re.match(r"- `([^`]+)` [↑↓]:.*", ln))}
    all_rows = df[df["seed"] == "all"]
    if "rows" in df.columns:  # a study with the common set too: this grid shows each model's own errors
        all_rows = all_rows[all_rows["rows"] == "errors"]
    scores = ["test_accuracy"] + [c for c in df.columns if "." in c and not c.endswith(("_lo", "_hi"))]
    labels = list(dict.fromkeys(all_rows["label"]))
    # `<backbone>-<attention>[-<placement>]`: the backbone, then the rest (e.g. "se-head")
    backbones = list(dict.fromkeys(lb.split("-", 1)[0] for lb in labels))
    attentions = list(dict.fromkeys(lb.split("-", 1)[-1] for lb in labels))
    by_label = {r["label"]: r for _, r in all_rows.iterrows()}
    up = "../" * depth
    grids = []
    for score in scores:
        higher = "↓" not in heads.get(score, "↑")
        vals = [num(by_label[lb].get(score, "")) for lb in labels]
        finite = [v for v in vals if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0, 1)
        rows = []
        for bb in backbones:
            cells = []
            for at in attentions:
                r = by_label.get(f"{bb}-{at}")
                if r is None:
                    cells.append("<td>–</td>")
                    continue
                v, html = _cell_value(r, score)
                share = ((v - lo) / (hi - lo) if higher else (hi - v) / (hi - lo)) if hi > lo and math.isfinite(v) else 0
                acc = _cell_value(r, "test_accuracy")[1] if score != "test_accuracy" else ""
                seeds = " ".join(f'<a href="{up}{board_ids[t]}/index.html">s{t.rsplit("seed", 1)[-1]}</a>'
                                 for t in sorted(board_ids) if t.startswith(f"{rel}/{bb}-{at}-seed"))
                cells.append(f'<td class="num" data-value="{esc(r.get(score, ""))}" style="background: rgba(11, 92, 173, '
                             f'{0.04 + 0.3 * share:.2f})">{html}'
                             + (f'<span class="acc">accuracy {acc}</span>' if acc else "")
                             + f'<span class="seeds">{seeds}</span></td>')
            rows.append(f'<tr><th scope="row">{esc(bb)}</th>{"".join(cells)}</tr>')
        head = "".join(f'<th scope="col">{esc(a)}</th>' for a in attentions)
        note = inline_md(heads[score][2:]) if score in heads else ""
        grids.append(f'<div class="grid-score" data-score="{esc(score)}"><h3>{esc(score)}</h3>'
                     f'<p class="muted">{note}</p><div class="scroll"><table class="zoo-grid"><thead><tr>'
                     f'<th>backbone \\ attention</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div></div>')
    options = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in scores)
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".json", ".md", ".png"))
    intro = [ln for ln in sections.get("", []) if ln.strip()]
    shows = [ln for ln in intro if ln.startswith("**What it shows")]
    cannot = [ln for ln in intro if ln.startswith("**What it cannot show")]
    incomplete = [ln for ln in intro if ln.startswith("**INCOMPLETE")]  # a grid published in sittings, so far
    about = [ln for ln in intro if ln not in shows + cannot + incomplete]
    body = [f'<p>{len(labels)} models ({len(backbones)} backbones × {len(attentions)} attention blocks), each trained with '
            f'{esc(all_rows["n_seeds"].iloc[0]) if len(all_rows) else "?"} seeds; every cell explains its own model\'s '
            "errors.</p>",
            f'<div class="banner caveats" role="note">{_paras(incomplete + cannot)}</div>' if cannot or incomplete else "",
            f"<details><summary>About this study: what it shows, the models</summary>{_paras(shows + about)}</details>",
            '<h2 id="grid">Backbone × attention</h2><p>Each cell: the mean over the model\'s training seeds, its 95% t '
            "interval over the seed means (few seeds: wide), the model's test accuracy and links to its seed boards "
            "(s0, s1, ...). Shading: darker = better on the shown score (within this grid).</p>"
            f'<p><label for="score">Score</label> <select id="score" class="score-select">{options}</select></p>',
            "".join(grids)]
    body.append(common_sections(folder, sections))
    if "study_quality.png" in files:
        body.append('<h2 id="figure">Quality against accuracy</h2>' + figure("study_quality.png", "study_quality.png"))
    body.append(f'<h2 id="table">Every row</h2>{_downloads(files, "")}<details><summary>The full study table '
                f"({len(df)} rows × {len(df.columns)} columns)</summary>{generic_table(df, 'study-table')}</details>")
    return page(title or rel, "\n".join(body), depth, [("index", f"{up}index.html")])


def _definitions(text: str, prefix: str = "col-") -> str:
    """'**term**: definition.' pairs of a meta.md intro as a definition list (the text kept as written).

    Args:
        text: the lead sentence(s), then the pairs.
        prefix: of each term's anchor id (`prefix` + term).
    """
    parts = re.split(r"\*\*([A-Za-z_]+)\*\*: ", text)
    lead, pairs = parts[0], list(zip(parts[1::2], parts[2::2]))
    items = "".join(f'<dt id="{prefix}{esc(k)}"><code>{esc(k)}</code></dt><dd>{inline_md(v.strip().rstrip(";"))}</dd>'
                    for k, v in pairs)
    return f"<p>{inline_md(lead)}</p><dl class=\"defs\">{items}</dl>"


def _separation_chart(df: pd.DataFrame) -> str:
    """Horizontal bars per metric: share of (method, board) pairs separated from random (BH; Holm as a tick)."""
    df = df.assign(_s=pd.to_numeric(df["separated_share"], errors="coerce")).sort_values("_s", ascending=False)
    w, row, left = 520, 20, 190
    bars = []
    for i, (_, r) in enumerate(df.iterrows()):
        y = i * row + 4
        s, h = num(r["separated_share"]), num(r.get("separated_share_holm", ""))
        colour = "#a40000" if r.get("flag") else "#0b5cad"
        bars.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{esc(r["metric"])}</text>'
                    f'<rect x="{left}" y="{y}" width="{(w - left - 50) * (s if math.isfinite(s) else 0):.1f}" '
                    f'height="14" fill="{colour}"><title>{esc(r["metric"])}: {fmt(s)} separated (BH), '
                    f'{fmt(h)} (Holm){"; flagged: " + esc(r["flag"]) if r.get("flag") else ""}</title></rect>'
                    + (f'<line x1="{left + (w - left - 50) * h:.1f}" x2="{left + (w - left - 50) * h:.1f}" y1="{y - 1}" '
                       f'y2="{y + 15}" stroke="#1b1b1b" stroke-width="2"/>' if math.isfinite(h) else "")
                    + f'<text x="{left + (w - left - 50) * (s if math.isfinite(s) else 0) + 4:.1f}" y="{y + 12}">'
                      f'{fmt(s)}</text>')
    half = left + (w - left - 50) * 0.5
    height = len(df) * row + 10
    return (f'<figure class="chart"><svg viewBox="0 0 {w} {height}" width="100%" style="max-width: {w}px" '
            f'role="img" aria-label="Bar chart: per attribution metric, the share of method and board pairs that '
            f'beat the random control">'
            f'<line x1="{half:.1f}" x2="{half:.1f}" y1="0" y2="{height}" stroke="#999" stroke-dasharray="3 3"/>'
            f'{"".join(bars)}</svg><figcaption>Separation from the random control: per metric, the share of '
            "(method, board) pairs where the method beats random (bar: Benjamini-Hochberg-adjusted p &lt; 0.05; black "
            "tick: Holm). Red = flagged (below 50%, dashed line, or an unstable ranking).</figcaption></figure>")


def _truth(folder: Path, lines: list[str], files: list[str]) -> str:
    """The truth agreement (bench.truth): its interval figure, its table (meta_truth.csv) and its column definitions."""
    legend = " ".join(ln for ln in lines if ln.strip() and not ln.startswith(("|", "![")))
    fig = figure("meta_truth.png", "meta_truth.png") if "meta_truth.png" in files else ""
    return (f'<h2 id="truth">{esc(TRUTH_SECTION)}?</h2>{fig}'
            + generic_table(read_as_text(folder / META_TRUTH), "meta-truth")
            + (f"<details><summary>What each column of the truth table means</summary>"
               f"{_definitions(legend, 'truth-col-')}</details>" if legend else ""))


def meta_page(folder: Path, rel: str, depth: int, seed_links: str = "") -> str:
    """A meta-evaluation: flagged metrics, the truth agreement (when present), the agreement heatmap, the separation
    chart, the tables, definitions."""
    md = (folder / "meta.md").read_text() if (folder / "meta.md").exists() else ""
    title, sections = _md_sections(md)
    intro = " ".join(ln for ln in sections.get("", []) if ln.strip() and not ln.startswith(("|", "![")))
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".csv", ".md", ".png"))
    up = "../" * depth
    body = []
    flagged = [ln[2:] for ln in sections.get("Flagged metrics", []) if ln.startswith("- ")]
    if flagged:
        body.append('<div class="flags"><p><strong>⚑ Flagged metrics</strong>: do not rank methods by these alone '
                    "(their columns on the boards are marked and never shaded best).</p><ul>"
                    + "".join(f"<li>{inline_md(x)}</li>" for x in flagged) + "</ul></div>")
    if seed_links:
        body.append(seed_links)
    if (folder / META_TRUTH).exists():
        body.append(_truth(folder, sections.get(TRUTH_SECTION, []), files))
    if "meta_agreement.png" in files:
        body.append('<h2 id="agreement">Do the metrics agree?</h2>' + figure("meta_agreement.png", "meta_agreement.png"))
    if (folder / META_ATTR).exists():
        att = read_as_text(folder / META_ATTR)
        if "separated_share" in att:
            body.append('<h2 id="separation">Do the metrics separate methods from random?</h2>' + _separation_chart(att))
        body.append(f'<h2 id="{ATTRIBUTIONS.stem}">Attribution metrics</h2>'
                    + generic_table(att, f"meta-{ATTRIBUTIONS.stem}"))
    if (folder / META_CF).exists():
        body.append(f'<h2 id="{COUNTERFACTUALS.stem}">Counterfactual metrics</h2>'
                    + generic_table(read_as_text(folder / META_CF), f"meta-{COUNTERFACTUALS.stem}"))
    rule = next((ln for ln in sections.get("Flagged metrics", []) if ln.strip() and not ln.startswith("- ")), "")
    own = {"metric": "the metric whose trustworthiness the row reports (one row per metric of the boards)",
           "methods_per_board": "how many solvers each board ran, board by board (the published board first, then "
                                "the seed boards), e.g. 6/3/3; bootstrap_tau is the mean over the boards with enough methods (≥ 5)",
           "flag": "why the metric is flagged (empty: not flagged). " + rule.rstrip(":")}
    body.append(f'<h2 id="definitions">What each column means</h2>{_definitions(intro)}<dl class="defs">'
                + "".join(f'<dt id="col-{k}"><code>{k}</code></dt><dd>{inline_md(v)}</dd>' for k, v in own.items())
                + "".join(f"<dt><code>{esc(k)}</code> <span class=\"muted\">(meta_separation.csv)</span></dt>"
                          f"<dd>{esc(v)}</dd>" for k, v in SEPARATION_COLUMNS.items()) + "</dl>")
    if (folder / "meta_agreement.csv").exists():
        agree = read_as_text(folder / "meta_agreement.csv")
        agree = agree.rename(columns={agree.columns[0]: "metric"})
        body.append(f"<details><summary>The agreement matrix as numbers (Kendall tau-b)</summary>"
                    f"{generic_table(agree, 'meta-agreement')}</details>")
    if (folder / "meta_separation.csv").exists():
        sep = read_as_text(folder / "meta_separation.csv")
        body.append(f"<details><summary>Every separation test ({len(sep)} rows)</summary>"
                    f'<div class="tall">{generic_table(sep, "meta-separation")}</div></details>')
    body.append(f'<h2 id="files">Files</h2>{_downloads(files, "")}')
    return page(title or rel, "\n".join(body), depth, [("index", f"{up}index.html")])


def tables_page(folder: Path, rel: str, depth: int, csvs: list[Path]) -> str:
    """Any folder of CSVs that are not boards: one sortable table per file, with its download link."""
    up = "../" * depth
    body = []
    for i, path in enumerate(csvs):
        body.append(f'<h2>{esc(path.name)}</h2><p class="downloads">Download: <a href="{esc(path.name)}" download>'
                    f"{esc(path.name)}</a></p>" + generic_table(read_as_text(path), f"table-{i}"))
    return page(rel or "tables", "\n".join(body), depth, [("index", f"{up}index.html")])
