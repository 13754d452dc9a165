"""HTML building blocks shared by the site's pages: the page shell, escaping, sortable tables, metric headers."""

from __future__ import annotations

import math
import re
from html import escape

SITE_NAME = "bench leaderboards"
# what every page's footer says about its build (set once per build by `build.build_site`)
STAMP = {"date": "", "version": "", "commit": ""}


def esc(value) -> str:
    """HTML-escape any value's text."""
    return escape(str(value), quote=True)


def num(text) -> float:
    """A CSV cell's text as a float (NaN when empty or not a number)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def inline_md(text: str) -> str:
    """Escape a Markdown note line and render its `code`, **bold** and [links](url)."""
    out = esc(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)


def page(title: str, body: str, depth: int, crumbs: list[tuple[str, str]] = (), head: str = "") -> str:
    """A whole HTML page linking the shared CSS and JS (paths relative, `depth` folders below the root).

    Args:
        title: page title (also the h1).
        body: inner HTML after the h1.
        depth: how many folders below the site root the page lives.
        crumbs: (label, href) links shown above the title.
        head: extra HTML for the page's head (a page-level style).

    Returns:
        The page's HTML text.
    """
    up = "../" * depth
    nav = " / ".join(f'<a href="{esc(h)}">{esc(t)}</a>' for t, h in crumbs)
    nav += f' <a class="nav-add" href="{up}add-a-method.html">how to add a method or model</a>'
    foot = (f'<footer class="stamp">Built {esc(STAMP["date"])} by <code>python -m bench site</code>, bench '
            f'{esc(STAMP["version"])}, commit <code>{esc(STAMP["commit"])}</code>. Plain files: no server, no network.'
            "</footer>")
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)} · {SITE_NAME}</title>\n<link rel=\"icon\" href=\"data:,\">\n"
            f'<link rel="stylesheet" href="{up}site.css">\n<script defer src="{up}site.js"></script>\n{head}'
            f'</head>\n<body>\n<nav class="crumbs">{nav}</nav>\n<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>\n'
            f"{foot}\n</body>\n</html>\n")


def sortable_table(columns: list[dict], rows: list[tuple[dict, list[tuple]]], table_id: str, caption: str = "") -> str:
    """A table the site's JS sorts by any column (click, Enter or Space on a header).

    Args:
        columns: dicts with `label` (HTML), `name` (plain), `numeric` (bool), optional `first`
            ("ascending" | "descending", the first click's order) and `tip` (tooltip text) or
            `tip_ref` (a key of the board's tips.js, filled in by site.js: pages repeat no long text).
        rows: (tr attributes, cells) per row; a cell is (data-value text, inner HTML, css class).
        table_id: the table's id.
        caption: optional caption text.

    Returns:
        HTML of the table, wrapped in a horizontally scrolling box, with a live sort-status line.
    """
    head = []
    for c in columns:
        tip = (f' data-tip="{esc(c["tip"])}"' if c.get("tip") else
               f' data-tip-ref="{esc(c["tip_ref"])}"' if c.get("tip_ref") else "")
        cls = f' class="{c["cls"]}"' if c.get("cls") else ""
        head.append(f'<th scope="col"{cls} data-type="{"num" if c["numeric"] else "str"}" data-name="{esc(c["name"])}">'
                    f'<button type="button" class="sort" data-label="{esc(c["name"])}" '
                    f'data-first="{c.get("first", "ascending")}"{tip}>{c["label"]}</button></th>')
    body = []
    for attrs, cells in rows:
        tr = "".join(f' {k}="{esc(v)}"' for k, v in attrs.items())
        tds = "".join(f'<td data-value="{esc(v)}"{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{h}</td>'
                      for v, h, cls in cells)
        body.append(f"<tr{tr}>{tds}</tr>")
    cap = f"<caption class=\"muted\">{esc(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table class="sortable" id="{esc(table_id)}">{cap}<thead><tr>{"".join(head)}'
            f'</tr></thead>\n<tbody>\n' + "\n".join(body) + '\n</tbody></table></div>'
            f'<p class="sort-status" data-for="{esc(table_id)}" aria-live="polite"></p>')


def metric_tip(m: dict, extra: str = "") -> str:
    """Tooltip text of a metric column: direction, definition, version, valid-only note."""
    arrow = "↑ higher is better" if m.get("higher_is_better") else "↓ lower is better"
    valid = " Valid counterfactuals only." if m.get("valid_only") else ""
    return f"{m['name']} ({arrow}, v{m.get('version', '?')}): {m.get('definition', '')}.{valid}{extra}"


def metric_label(m: dict) -> str:
    """Header HTML of a metric column: name and direction arrow."""
    return f'{esc(m["name"])} <span class="dir" aria-hidden="true">{"↑" if m.get("higher_is_better") else "↓"}</span>'


def short_reason(text: str, limit: int = 110) -> str:
    """A failure reason as one readable line (its first sentence, at most `limit` characters) and the full
    text on demand (a <details>), HTML."""
    text = " ".join(str(text).split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    short = first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + " …"
    if short == text:
        return esc(text)
    return (f'<span class="reason">{esc(short)}</span> <details class="full-reason"><summary>full text</summary>'
            f"{esc(text)}</details>")
