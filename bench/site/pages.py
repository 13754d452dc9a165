"""The site's index page and one page per board (tables, figures, definitions, provenance, errors)."""

from __future__ import annotations

import json
import re

from bench.board import table
from bench.site.caveats import caveat_lines, headline
from bench.site.figures import figure
from bench.site.html import esc, inline_md, page, short_reason
from bench.site.index import SEEDS_NOTE, TRUTH_NOTE, board_kind
from bench.site.tables import board_table


def _notes(md: str | None) -> str:
    """The Markdown's notes under its table and definitions (errors, reproduce, cost, sanity, failures)."""
    if not md:
        return ""
    lines = md.splitlines()
    start = max((i for i, ln in enumerate(lines) if ln.startswith("- ") and "(v" in ln), default=len(lines))
    kept = [ln for ln in lines[start + 1:] if ln.strip() and not ln.startswith(("![", "<!--"))]
    out, table = [], []
    for ln in kept + [""]:
        if ln.startswith("|"):
            table.append(ln)
            continue
        if table:
            out.append(_md_table(table))
            table = []
        failed = re.match(r"\*\*Failed and left out:\*\* ([^:]+): (.*)$", ln)
        if failed:
            out.append(f'<div class="failure"><strong>Failed and left out:</strong> {esc(failed.group(1))}: '
                       f"{short_reason(failed.group(2))}</div>")
        elif ln.startswith("## "):
            out.append(f"<h3>{inline_md(ln[3:])}</h3>")
        elif ln:
            out.append(f"<p>{inline_md(ln)}</p>")
    return "".join(out)


def _md_table(lines: list[str]) -> str:
    """A Markdown pipe table as an HTML table (inside a scrolling box)."""
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines
             if not set(ln.replace("|", "").strip()) <= set("-: ")]
    if not cells:
        return ""
    head = "".join(f"<th>{inline_md(c)}</th>" for c in cells[0])
    body = "".join("<tr>" + "".join(f"<td>{inline_md(c)}</td>" for c in row) + "</tr>" for row in cells[1:])
    return f'<div class="scroll"><table class="notes-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'



def _downloads(board: dict, stem: str) -> str:
    t = table(stem)
    names = [t.csv().name, t.json().name, t.md().name, t.instances().name]
    links = [f'<a href="files/{n}" download>{n}</a>' for n in names if n in board["files"]]
    return f'<p class="downloads">Download: {" ".join(links)}</p>'


def _definitions(metrics: list[dict], stem: str = "") -> str:
    items = "".join(f"<dt id=\"def-{esc(stem)}-{esc(m['name'])}\">{esc(m['name'])} {'↑' if m.get('higher_is_better') else '↓'} <span class=\"muted\">"
                    f"v{esc(m.get('version', '?'))}</span></dt><dd>{esc(m.get('definition', ''))}"
                    f"{' — valid counterfactuals only' if m.get('valid_only') else ''}</dd>" for m in metrics)
    return f'<dl class="defs">{items}</dl>'


def _provenance(prov: dict) -> str:
    """Reproduce command, hashes, versions, device, entries and the full config of one leaderboard."""
    model, errs, git = prov.get("model", {}), prov.get("errors", {}), prov.get("git", {})
    facts = [("reproduce", f"<code>{esc(prov.get('command', ''))}</code>"),
             ("created", esc(prov.get("created", ""))),
             ("git commit", f"<code>{esc(git.get('commit') or 'unknown')}</code>" + (" (dirty)" if git.get("dirty") else "")),
             ("model", f"{esc(model.get('name', ''))} {esc(json.dumps(model.get('params', {})))}, test accuracy "
                       f"{esc(model.get('test_accuracy', ''))}, {esc(model.get('n_params', ''))} parameters"),
             ("weights sha256", f"<code>{esc(model.get('weights_sha256', ''))}</code>"),
             ("errors", f"{esc(errs.get('n', ''))}" + (" — NOT FOR PUBLICATION (--limit)" if errs.get("limited") else "")),
             ("manifest sha256", f"<code>{esc(errs.get('manifest_sha256', ''))}</code>"),
             ("dataset", esc(json.dumps(prov.get("dataset", {})))),
             ("device", esc(json.dumps(prov.get("device", {})))), ("seed", esc(prov.get("seed", ""))),
             ("wall time", f"{esc(prov.get('wall_seconds', ''))} s"),
             ("libraries", esc(", ".join(f"{k} {v}" for k, v in prov.get("libraries", {}).items())))]
    rows = "".join(f"<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>" for k, v in facts)
    entries = "".join(
        f"<tr><td>{esc(e.get('method'))}</td><td>{esc(e.get('mode', ''))}</td><td>{esc(e.get('version'))}</td>"
        f"<td>{esc(e.get('n'))}</td><td><code>{esc(e.get('entry_key'))}</code></td>"
        f"<td><code>{esc(json.dumps(e.get('params', {}), sort_keys=True))}</code></td></tr>"
        for e in prov.get("entries", []))
    return (f"<table>{rows}</table><details><summary>Entries (parameters, versions, store keys)</summary>"
            f'<div class="scroll"><table><thead><tr><th>method</th><th>mode</th><th>version</th><th>n</th>'
            f"<th>entry key</th><th>parameters</th></tr></thead><tbody>{entries}</tbody></table></div></details>"
            f"<details><summary>Full config</summary><pre>{esc(json.dumps(prov.get('config', {}), indent=2))}"
            f"</pre></details>")


def _gallery(items: list[dict], n_errors=None) -> str:
    if not items:
        return ('<p id="no-instances" class="muted">No per-instance data in this board (its '
                "<code>*_instances.csv</code> and <code>*_artifacts.npz</code> are missing: it was published "
                "before the per-instance export; republish it to get the drill-down).</p>")
    links = "".join(f'<a href="{esc(i["href"])}" data-test-index="{i["test_index"]}"><img class="px" '
                    f'src="{i["thumb"]}" alt="test image {i["test_index"]}">#{i["test_index"]}<br>'
                    f'{i["true"]}←{i["pred"]}<br><span class="muted">{esc(i["summary"])}</span></a>' for i in items)
    shown = f"{len(items)} of its {n_errors} errors (those some entry ran on)" \
        if isinstance(n_errors, int) and n_errors > len(items) else f"{len(items)} errors"
    return (f'<p class="muted">{shown}; label true←predicted; open one for every solver\'s '
            f"counterfactual and change map, every method's heatmap and the per-instance scores.</p>"
            f'<div class="gallery">{links}</div>')


def _flags_note(p: dict, flags_href: str) -> str:
    """The meta-evaluation flags of one table, as a list under it (the header marks carry the same reasons)."""
    if not p.get("flags_found"):
        return ""
    where = f' (<a href="{esc(flags_href)}">the meta-evaluation</a>)' if flags_href else ""
    if not p["flags"]:
        return f'<p class="muted">The meta-evaluation{where} flags none of these metrics.</p>'
    items = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in p["flags"].items())
    return (f'<div class="flags"><p><strong>⚑ Flagged by the meta-evaluation</strong>{where}: do not rank methods '
            f"by these metrics alone; their columns are marked ⚑ and never shaded best.</p><ul>{items}</ul></div>")


def board_page(board: dict, gallery: list[dict]) -> str:
    """The HTML page of one board: headline, caveats, tables, notes, figures, definitions, errors, provenance.

    Args:
        board: a board dict of `build.load_board`.
        gallery: the items `errors.error_pages` returned (empty without per-instance data).

    Returns:
        The page's HTML.
    """
    parts, body = board["parts"], []
    if any(p["csv"]["not_for_publication"].eq("True").any() for p in parts.values() if "not_for_publication" in p["csv"]):
        body.append('<p class="banner">NOT FOR PUBLICATION: --limit cut the error set.</p>')
    caveats = caveat_lines(board)
    if caveats:
        body.append('<div class="banner caveats" role="note" id="caveats"><strong>Read with care.</strong><ul>'
                    + "".join(f"<li>{c}</li>" for c in caveats) + "</ul></div>")
    if board_kind(board) == "seed":
        body.append(f'<p class="muted">A seed board of the meta-evaluation: {esc(SEEDS_NOTE)}. Read it beside the '
                    "published board (seed 0): where the two disagree, the ranking depends on the training seed.</p>")
    elif board_kind(board) == "truth":
        rows = ("the model's errors" if board.get("rows", "errors") == "errors" else
                "a stratified sample of correct predictions (counterfactuals toward the runner-up class)")
        body.append(f'<p class="muted">A ground-truth board ({esc(TRUTH_NOTE)}). Its rows: {esc(rows)}.</p>')
    elif board_kind(board) == "zoo":
        body.append('<p class="muted">A cell of the model-zoo study: one trained model (backbone, attention block, '
                    "seed) whose own errors the study's methods explain; the study page compares the cells.</p>")
    metas = {s: (p["prov"] or {}).get("metrics", []) for s, p in parts.items()}
    body.append(headline(board, metas))
    toc = [f'<a href="#{s}">{table(s).title}</a>' for s in parts]
    if board.get("compare"):
        toc.append('<a href="compare.html">Compare two methods</a>')
    toc += ['<a href="#errors">Errors</a>', '<a href="#provenance">Provenance</a>']
    body.append(f'<p class="toc">{" · ".join(toc)}</p>')
    body.append("<p class=\"muted legend\">Cells: mean, 95% interval [lo, hi] by the column's kind (Wilson for "
                "proportions, BCa bootstrap for means; none for a constant sample, n &lt; 2 or a batch timing) and "
                "a bar (line = interval, dot = mean, one scale per column); n=k where a cell has fewer instances "
                "than its row. ↑ higher is better, ↓ lower is better. Shaded = best in its column (the CSV's "
                "<code>&lt;metric&gt;_best</code>) among rows with n ≥ 10 that ran on as many errors as the "
                "table's fullest row; ⚑ flagged columns and the control row are never shaded; ≈ = not "
                "significantly better than the runner-up (paired sign-flip test on shared instances, "
                "Holm-corrected over the table, adjusted p ≥ 0.05). Click a column header (or focus it and press "
                "Enter) to sort (the sort is kept in the address); hover or focus it for the metric's definition."
                "</p>")
    for stem, p in parts.items():
        body += [f'<h2 id="{stem}">{table(stem).title}</h2>', _downloads(board, stem),
                 board_table(p["csv"], metas[stem], f"{stem}-table", p.get("flags")),
                 _flags_note(p, board.get("flags_href", "")), _notes(p["md"])]
        body += [figure(f"files/{f}", f) for f in board["files"] if f.startswith(stem) and f.endswith(".png")]
        body += [f"<h3>Metric definitions</h3>{_definitions(metas[stem], stem)}"]
    body += ['<h2 id="errors">Errors</h2>', _gallery(gallery, board.get("n_errors")), '<h2 id="provenance">Provenance</h2>']
    for stem, p in parts.items():
        if p["prov"]:
            body += [f"<h3>{table(stem).title}</h3>", _provenance(p["prov"])]
    crumbs = [("index", "../index.html")] + ([board["parent"]] if board.get("parent") else [])
    return page(board["title"], "\n".join(body), 1, crumbs)
