"""The site's index page and one page per board (tables, figures, definitions, provenance, errors)."""

from __future__ import annotations

import json

from bench.site.html import esc, inline_md, page
from bench.site.tables import board_table, generic_table

TITLES = {"counterfactuals": "Counterfactuals", "attributions": "Attributions"}


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
        if ln.startswith("## "):
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
    names = [f"{stem}.csv", f"{stem}.json", f"{stem}.md", f"{stem}_instances.csv"]
    links = [f'<a href="files/{n}" download>{n}</a>' for n in names if n in board["files"]]
    return f'<p class="downloads">Download: {" ".join(links)}</p>'


def _definitions(metrics: list[dict]) -> str:
    items = "".join(f"<dt>{esc(m['name'])} {'↑' if m.get('higher_is_better') else '↓'} <span class=\"muted\">"
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


def board_page(board: dict, gallery: list[dict]) -> str:
    """The HTML page of one board.

    Args:
        board: a board dict of `build.load_board`.
        gallery: the items `errors.error_pages` returned (empty without per-instance data).

    Returns:
        The page's HTML.
    """
    parts, body = board["parts"], []
    if any(p["csv"]["not_for_publication"].eq("True").any() for p in parts.values()):
        body.append('<p class="banner">NOT FOR PUBLICATION: --limit cut the error set.</p>')
    toc = [f'<a href="#{s}">{TITLES[s]}</a>' for s in parts] + ['<a href="#errors">Errors</a>',
                                                                 '<a href="#provenance">Provenance</a>']
    body.append(f'<p>{" · ".join(toc)}</p>')
    body.append("<p class=\"muted\">Cells: mean, 95% interval [lo, hi] by the column's kind (Wilson for "
                "proportions, BCa bootstrap for means; none for a constant sample, n &lt; 2 or a batch timing) and "
                "a bar (line = interval, dot = mean, one scale per column); n=k where a cell has fewer instances "
                "than its row. ↑ higher is better, ↓ lower is better. Shaded = best in its column among rows with "
                "n ≥ 10; ≈ = not significantly better than the runner-up (paired sign-flip test on shared "
                "instances, Holm-corrected over the table, adjusted p ≥ 0.05). Click a column header (or focus it "
                "and press Enter) to sort; hover or focus it for the metric's definition.</p>")
    for stem, p in parts.items():
        metrics = (p["prov"] or {}).get("metrics", [])
        body += [f'<h2 id="{stem}">{TITLES[stem]}</h2>', _downloads(board, stem), board_table(p["csv"], metrics, f"{stem}-table"),
                 _notes(p["md"])]
        body += [f'<figure><img src="files/{esc(f)}" alt="{esc(f)}" loading="lazy"><figcaption>{esc(f)}</figcaption>'
                 f"</figure>" for f in board["files"] if f.startswith(stem) and f.endswith(".png")]
        body += [f"<h3>Metric definitions</h3>{_definitions(metrics)}"]
    body += ['<h2 id="errors">Errors</h2>', _gallery(gallery, board.get("n_errors")), '<h2 id="provenance">Provenance</h2>']
    for stem, p in parts.items():
        if p["prov"]:
            body += [f"<h3>{TITLES[stem]}</h3>", _provenance(p["prov"])]
    return page(board["title"], "\n".join(body), 1, [("index", "../index.html")])


def index_page(boards: list[dict], extras: list[dict]) -> str:
    """The site's front page: the dataset x model matrix, every board's facts, other tables."""
    grid = [b for b in boards if b["dataset"] and b["model"]]
    datasets, models = sorted({b["dataset"] for b in grid}), sorted({b["model"] for b in grid})
    cell: dict = {}
    for b in grid:  # a published board is <dataset>/<model>; a run folder adds its time below
        cell.setdefault((b["dataset"], b["model"]), []).append(f'<a href="{b["id"]}/index.html">{esc(b["title"])}</a>')
    head = "".join(f"<th scope=\"col\">{esc(m)}</th>" for m in models)
    rows = "".join(f"<tr><th scope=\"row\">{esc(d)}</th>" + "".join(
        f"<td>{'<br>'.join(cell[d, m])}</td>" if (d, m) in cell else "<td>–</td>" for m in models) + "</tr>"
        for d in datasets)
    body = ["<p>Counterfactual and attribution leaderboards on the errors (misclassified test images) of image "
            "classifiers. Every number carries a 95% bootstrap CI, its n and a provenance record.</p>",
            f'<h2>Boards (dataset × model)</h2><table class="matrix"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>", "<h2>All boards</h2>"]
    facts = "".join(
        f'<tr><td><a href="{b["id"]}/index.html">{esc(b["title"])}</a></td><td>{esc(b["dataset"])}</td>'
        f'<td>{esc(b["model"])}</td><td class="num">{esc(b["n_errors"])}</td><td class="num">{esc(b["accuracy"])}</td>'
        f'<td>{esc(", ".join(TITLES[s].lower() for s in b["parts"]))}</td><td>{"yes" if b["drill"] else "no"}</td>'
        f'<td>{esc(b["created"])}</td><td>{esc(b["note"])}</td></tr>' for b in boards)
    body.append("<div class=\"scroll\"><table><thead><tr><th>board</th><th>dataset</th><th>model</th><th>errors</th>"
                "<th>test accuracy</th><th>tables</th><th>per-error drill-down</th><th>created</th><th>note</th>"
                f"</tr></thead><tbody>{facts}</tbody></table></div>")
    if extras:
        body.append("<h2>Other tables (zoo, meta-evaluation)</h2><ul>" + "".join(
            f'<li><a href="{e["href"]}">{esc(e["title"])}</a></li>' for e in extras) + "</ul>")
    body.append('<p class="muted">Built by <code>python -m bench site</code>; plain files, no server or network '
                "needed. Column definitions: each board's Metric definitions, and leaderboards/README.md.</p>")
    return page("bench leaderboards", "\n".join(body), 0)


def extra_page(extra: dict, df) -> str:
    """A page for a table that is not a board (zoo, meta-evaluation): sortable, with its download link."""
    body = (f'<p class="downloads">Download: <a href="{esc(extra["file"])}" download>{esc(extra["file"])}</a></p>'
            + generic_table(df, "table"))
    return page(extra["title"], body, 1, [("index", "../index.html")])
