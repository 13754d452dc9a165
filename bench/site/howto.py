"""The "how to add a method or a model" page, generated from the plugin contract (bench/contract) by reading its
source with `ast`: the page follows the contract's own docstrings and defaults, and imports no torch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bench.site.html import esc, page

API = Path(__file__).resolve().parents[1] / "contract"
# (module, name) of what a plugin author touches, in the order they need it
PIECES = [("methods", "Method"), ("methods", "CounterfactualSolver"), ("methods", "AttributionMethod"),
          ("results", "CFResult"), ("results", "AttrResult"), ("metrics", "metric"), ("models", "Normalized"),
          ("params", "Range")]


def _node(module: str, name: str):
    tree = ast.parse((API / f"{module}.py").read_text())
    return next((n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == name), None), \
        (API / f"{module}.py").read_text().splitlines()


def _attributes(node: ast.ClassDef, lines: list[str]) -> str:
    """A class's declared attributes with their defaults and trailing comments, as in the source."""
    rows = []
    for st in node.body:
        if isinstance(st, (ast.AnnAssign, ast.Assign)) and st.lineno == st.end_lineno:
            src = lines[st.lineno - 1].strip()
            comment = lines[st.lineno - 2].strip() if lines[st.lineno - 2].strip().startswith("#") else ""
            rows.append(f"<li><code>{esc(src)}</code>{f' <span class=muted>{esc(comment)}</span>' if comment else ''}</li>")
    return f"<ul>{''.join(rows)}</ul>" if rows else ""


def _piece(module: str, name: str) -> str:
    node, lines = _node(module, name)
    if node is None:
        return ""
    doc = ast.get_docstring(node) or ""
    sig = ""
    if isinstance(node, ast.FunctionDef):
        sig = lines[node.lineno - 1].strip()
    calls = [n for n in getattr(node, "body", []) if isinstance(n, ast.FunctionDef) and n.name == "__call__"]
    call = f"<p>Call: <code>{esc(lines[calls[0].lineno - 1].strip())}</code></p>" if calls else ""
    return (f'<h3 id="{esc(name)}"><code>bench.contract.{esc(name)}</code> <span class="muted">(bench/contract/{module}.py)'
            f"</span></h3>{f'<p><code>{esc(sig)}</code></p>' if sig else ''}<pre class=\"doc\">{esc(doc)}</pre>{call}"
            + (_attributes(node, lines) if isinstance(node, ast.ClassDef) else ""))


def howto_page() -> str:
    """The page's HTML (at the site's root)."""
    contract = ast.get_docstring(ast.parse((API / "__init__.py").read_text())) or ""
    readme = API.parents[1] / "README.md"
    blocks = re.findall(r"```python\n(# (\w+\.py)\n.*?)```", readme.read_text(), flags=re.S) if readme.exists() else []
    body = ["<p>A new method, metric or model is one Python file that imports <code>bench.contract</code> and nothing else "
            "of bench. Run it on a board's preset by naming the file as a plugin, then publish the board; its page "
            "here is built from the board's files. This page is generated from the contract's source, so it says "
            "what the code says.</p>",
            "<h2>Steps</h2><ol><li>Write one file: a class deriving from <code>CounterfactualSolver</code> or "
            "<code>AttributionMethod</code> with a frozen <code>Params</code> dataclass (documented defaults, "
            "<code>Range</code> annotations), registered with <code>@register_solver(\"name\")</code> / "
            "<code>@register_attribution(\"name\")</code>; a metric is a function registered with "
            "<code>metric(...)</code>; a model is a builder registered with <code>@register_model</code> that "
            "returns a <code>Normalized</code> network.</li>"
            "<li>Check it: <code>python -m bench list</code> names it; the contract tests "
            "(<code>tests/test_contract.py</code>, <code>tests/test_solver_contract.py</code>) run on every "
            "registered entry.</li>"
            "<li>Run it beside the existing methods: <code>python -m bench run --preset tiny --set "
            "'plugins=[\"my_method.py\"]' --set 'counterfactuals.solvers=[\"my_method\", \"gradient\"]'</code> "
            "(attributions: <code>attributions.methods</code>); the run prints its table and writes a board.</li>"
            "<li>Publish: <code>--publish</code> on the default preset writes <code>leaderboards/&lt;dataset&gt;/"
            "&lt;model&gt;/</code>; <code>python -m bench site</code> rebuilds these pages. An installed package "
            "declares its modules in the entry-point groups <code>bench.solvers</code>, <code>bench.attributions"
            "</code>, <code>bench.cf_metrics</code>, <code>bench.attr_metrics</code>, <code>bench.models</code>, "
            "<code>bench.datasets</code> instead.</li></ol>",
            f'<h2>The contract</h2><pre class="doc">{esc(contract)}</pre>']
    body += [_piece(m, n) for m, n in PIECES]
    for code, name in blocks[:1]:  # the README's plugin example, a whole solver in one file
        body.append(f"<h2>A whole method in one file</h2><p>The README's example plugin, <code>{esc(name)}</code>: "
                    f"save it, then run it with <code>--set 'plugins=[\"{esc(name)}\"]'</code>.</p><pre>{esc(code)}</pre>")
    return page("How to add a method or a model", "\n".join(body), 0, [("index", "index.html")])
