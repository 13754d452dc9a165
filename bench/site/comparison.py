"""The study page's sections on the common image set: the paired headline (study.md's words, then
comparison_tests.csv), every label's value (comparison.csv) and the side-by-side with the seed
report's Table 4, all as bench.study.outputs wrote them; nothing here computes a number."""

from __future__ import annotations

from pathlib import Path

from bench.board import read_as_text
from bench.site.html import esc, inline_md
from bench.site.tables import generic_table

HEADLINE, TABLE4 = "Headline on the common image set", "The models, laid out as the seed report's Table 4"
TESTS, VALUES = "comparison_tests.csv", "comparison.csv"


def md_table(lines: list[str]) -> str:
    """A Markdown pipe table (header, rule, rows) as an HTML table, its cells' inline Markdown rendered."""
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.strip().startswith("|")]
    if len(rows) < 2:
        return ""
    head = "".join(f'<th scope="col">{inline_md(c)}</th>' for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{inline_md(c)}</td>" for c in r) + "</tr>" for r in rows[2:])
    return f'<div class="scroll"><table class="md-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _prose(lines: list[str]) -> str:
    """Paragraphs, and '- ' lines as one list, of a study.md section (its tables left to md_table)."""
    out, items = [], []
    for ln in lines + [""]:
        if ln.startswith("- "):
            items.append(f"<li>{inline_md(ln[2:])}</li>")
            continue
        if items:
            out.append(f'<ul class="headline">{"".join(items)}</ul>')
            items = []
        if ln.strip() and not ln.startswith(("|", "![", "<!--")):
            out.append(f"<p>{inline_md(ln)}</p>")
    return "".join(out)


def sections(folder: Path, md: dict[str, list[str]]) -> str:
    """The common-set sections of a study page ('' for a study without the common set)."""
    if not (folder / VALUES).exists():
        return ""
    parts = [f'<h2 id="common">{esc(HEADLINE)}</h2>', _prose(md.get(HEADLINE, []))]
    tests = folder / TESTS
    if tests.exists() and tests.stat().st_size > 1:
        parts.append("<h3>The paired tests</h3><p>One row per comparison of the headline: the best label against "
                     "the runner-up and against the same backbone without attention; <code>p_holm</code> is "
                     "Holm-adjusted over all of them, <code>mdd</code> the smallest difference each could detect "
                     "at 80% power, <code>shown</code> whether it carries a claim.</p>"
                     + generic_table(read_as_text(tests), "comparison-tests"))
    values = read_as_text(folder / VALUES)
    parts.append(f"<details><summary>Every label's value on the common set ({len(values)} rows: mean over seeds and "
                 "images, 95% two-level bootstrap interval, rank; unranked labels say why)</summary>"
                 + generic_table(values, "comparison-values") + "</details>")
    if TABLE4 in md:
        parts += [f'<h2 id="table4">{esc(TABLE4)}</h2>', _prose(md[TABLE4]), md_table(md[TABLE4])]
    return "\n".join(p for p in parts if p)


__all__ = ["sections", "md_table"]
