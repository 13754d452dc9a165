"""A board's compare view: two methods side by side on the errors both ran on (paired per-error differences
from `<stem>_instances.csv`; site.js computes them in the page, nothing is fetched)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.board import COUNTERFACTUALS
from bench.site.html import esc, num, page


def _data(board: dict) -> dict:
    """stem -> metrics (name, higher, valid_only) and entries ("method|mode" -> {test_index: [score or None]})."""
    out = {}
    for stem, p in board["parts"].items():
        if not p.get("inst"):
            continue
        inst = p["inst"][0]
        metrics = [m for m in (p["prov"] or {}).get("metrics", []) if m["name"] in inst]
        entries: dict = {}
        for _, r in inst.iterrows():
            valid = stem != COUNTERFACTUALS.stem or (r.get("success") == "True" and num(r.get("validity", "1")) >= 0.5)
            scores = []
            for m in metrics:
                v = num(r[m["name"]])
                scores.append(v if math.isfinite(v) and (valid or not m.get("valid_only")) else None)
            entries.setdefault(f"{r['method']}|{r['mode']}", {})[r["test_index"]] = scores
        out[stem] = dict(metrics=[dict(name=m["name"], higher=bool(m.get("higher_is_better")),
                                       valid_only=bool(m.get("valid_only"))) for m in metrics], entries=entries)
    return out


def compare_page(board: dict, dest: Path) -> bool:
    """Write <board>/compare.html and its data (compare-data.js) when the board has per-instance scores.

    Returns:
        Whether a compare page was written.
    """
    data = _data(board)
    if not data:
        return False
    (dest / "compare-data.js").write_text("window.BENCH_COMPARE = " + json.dumps(data, separators=(",", ":"))
                                          + ";\n")
    stems = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in data)
    body = (f'<p>Two methods of this board on the errors <em>both</em> ran on: per metric the shared n, each one\'s '
            "mean there, the mean paired difference A − B and how many errors each does better on (↑/↓ as the metric "
            "says; distances only where both counterfactuals are valid). These are descriptive: the board's own paired, "
            'Holm-corrected tests are its best marks and <code>counterfactuals_pairs.csv</code>. The choice is kept '
            'in the address, so a comparison can be linked.</p><div id="compare" class="compare">'
            f'<p><label for="cmp-stem">Table</label> <select id="cmp-stem">{stems}</select> '
            '<label for="cmp-a">A</label> <select id="cmp-a"></select> '
            '<label for="cmp-b">B</label> <select id="cmp-b"></select></p>'
            '<div class="scroll"><table id="compare-table"><thead><tr><th>metric</th><th>shared n</th><th>mean A</th>'
            '<th>mean B</th><th>mean A − B</th><th>A better</th><th>B better</th><th>tie</th></tr></thead>'
            '<tbody></tbody></table></div><p id="compare-status" class="sort-status" aria-live="polite"></p>'
            '<h2>Per error</h2><p><label for="cmp-metric">Metric</label> <select id="cmp-metric"></select></p>'
            '<div class="scroll tall"><table id="compare-errors"><thead><tr><th>error</th><th>A</th><th>B</th>'
            "<th>A − B</th></tr></thead><tbody></tbody></table></div></div>")
    head = '<script src="compare-data.js"></script>\n'
    (dest / "compare.html").write_text(page(f"{board['title']}: compare two methods", body, 1,
                                            [("index", "../index.html"), (board["title"], "index.html")], head))
    return True
