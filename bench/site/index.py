"""The site's front page: a cross-board summary, boards by dataset, model and study, search, developer boards."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.board import ATTRIBUTIONS, COUNTERFACTUALS, fmt
from bench.board import table as table_of
from bench.site.caveats import HEADLINE, below_floor, floor_of, is_control, shade_best, small_rows
from bench.site.families import CONTROL, FAMILIES, OTHER, family_of
from bench.site.html import esc, num, page
from bench.stats import ALPHA

SEEDS_NOTE = ("the same MNIST cnn retrained with training seeds 1 and 2 and run like the published board (seed 0): "
              "the meta-evaluation reads all three to say which metrics rank methods stably across seeds")


TRUTH_NOTE = ("controlled sets built from MNIST where the pixels that carry the label are known (the mask): "
              "mnist-distractor (the label is the left digit; mask = the left half), mnist-decoy (the label is only a "
              "corner patch's grey level; mask = the patch), mnist-decoy-shortcut (a patch's slot is the label in "
              "training only; mask = the patch, where a shortcut model looks). Their loc_* columns score each map "
              "against the mask, cf_mask_share each counterfactual; their meta-evaluation says which faithfulness "
              "metric ranks methods as the truth does")


def _in_study(folder: Path) -> bool:
    """Is this board a study's cell (a study.csv in its folder's parent, or, for a common cell, grandparent)?"""
    return (folder.parent / "study.csv").exists() or (folder.parent.parent / "study.csv").exists()


def board_kind(board: dict) -> str:
    """'dev' (bench check's regression baselines), 'zoo' (a study cell), 'seed' (a meta-evaluation seed board),
    'truth' (a board of a controlled set with a ground-truth mask) or 'main' (a published dataset x model board)."""
    from bench.data import MASKED

    pieces = board["title"].split("/")
    if pieces[0] == "ci":
        return "dev"
    if pieces[0] in MASKED:
        return "truth"
    folder = board.get("folder")
    if len(pieces) >= 3 and (pieces[1] == "zoo" or (folder is not None and _in_study(Path(folder)))):
        return "zoo"
    if "meta" in pieces[:-1]:
        return "seed"
    return "main"


def _wins(boards: list[dict]) -> dict:
    """Per (task, method): boards run on, headline wins (significant / not after Holm), boards where it is
    not better than the random control, and on how many boards a flagged metric is in its table."""
    out: dict = {}
    for b, stem, df, flagged, small, r in _board_rows(boards):
        if is_control(r["method"]):
            continue
        s = out.setdefault((stem, r["method"]), dict(boards=set(), sig=[], ns=[], not_random=set()))
        s["boards"].add(b["title"])
        if r.get("beats_random") == "False":
            s["not_random"].add(b["title"])
        for name in HEADLINE.get(stem, ()):
            if name in df and shade_best(r, name, small, flagged):
                p_adj = num(r.get(f"{name}_p_next_holm", ""))
                (s["sig"] if p_adj < ALPHA else s["ns"]).append(f"{b['title']} {name}")
    return out


def _board_rows(boards: list[dict]):
    """(board, stem, table, flagged metrics, small rows, row) for every row of every board table."""
    for b in boards:
        for stem, p in b["parts"].items():
            df, flagged = p["csv"], p.get("flags", {})
            small = small_rows(df)
            for _, r in df.iterrows():
                yield b, stem, df, flagged, small, r


def _family_facts(boards: list[dict]) -> dict:
    """Per (task, family of `families.FAMILIES`): the members that ran, the boards they ran on, their wins on a
    headline metric (board, metric, method, lead holds after Holm), best marks the site does not count (a subset
    row or n < 10), and where they are flagged (a best mark on a metric the board's meta-evaluation flags; a
    member not better than the random control)."""
    out: dict = {}
    for b, stem, df, flagged, small, r in _board_rows(boards):
        method = r["method"]
        f = out.setdefault((stem, family_of(stem, method)), dict(
            members=set(), boards=set(), wins=[], uncounted=[], flagged=[], not_random=[]))
        f["members"].add(method)
        f["boards"].add(b["title"])
        if is_control(method):
            continue
        row = method + (f" ({r['mode']})" if r.get("mode") else "")
        if r.get("beats_random") == "False":
            f["not_random"].append((b["title"], row, fmt(r.get("vs_random_p_holm", r.get("vs_random_p", "")))))
        for name in HEADLINE.get(stem, ()):
            if name not in df or r.get(f"{name}_best", "") != "True" or name in flagged:
                continue
            if shade_best(r, name, small, flagged):
                holds = num(r.get(f"{name}_p_next_holm", "")) < ALPHA
                f["wins"].append((b["title"], name, row, holds))
            else:
                f["uncounted"].append((b["title"], name, row, r.get("n", "")))
        for name in flagged:
            if r.get(f"{name}_best", "") == "True":
                f["flagged"].append((b["title"], name, row, flagged[name]))
    return out


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _where(items: list[str], label: str) -> str:
    return (f'<details><summary>{esc(label)}</summary><ul class="where">{"".join(items)}</ul></details>'
            if items else "")


def _family_summary(boards: list[dict]) -> tuple[list[str], str]:
    """Sentences (one per task) and a table: per method family, where it wins, where it is flagged, on how many
    boards it ran."""
    facts = _family_facts(boards)
    lines, rows = [], []
    for stem in FAMILIES:
        order = [*FAMILIES[stem], OTHER]
        fams = [(fam, facts[stem, fam]) for fam in order if (stem, fam) in facts]
        if not fams:
            continue
        ranked = sorted((x for x in fams if x[1]["wins"]), key=lambda x: (-sum(w[3] for w in x[1]["wins"]),
                                                                           -len(x[1]["wins"]), order.index(x[0])))
        if ranked:
            lines.append(f"{esc(table_of(stem).title)} by method family: " + "; ".join(
                f"<strong>{esc(fam)}</strong> best on {_n(len(f['wins']), 'headline cell')} ({_n(sum(w[3] for w in f['wins']), 'lead')} "
                f"holding after Holm; ran on {_n(len(f['boards']), 'board')})" for fam, f in ranked) + ".")
        for fam, f in fams:
            wins = [f'<li data-board="{esc(t)}" data-metric="{esc(m)}" data-method="{esc(row)}">{esc(t)} '
                    f'<code>{esc(m)}</code>: {esc(row)}, {"lead holds after Holm" if holds else "lead not significant"}'
                    "</li>" for t, m, row, holds in f["wins"]]
            wins += [f'<li class="muted" data-uncounted="true">{esc(t)} <code>{esc(m)}</code>: {esc(row)} is marked best '
                     f"on a subset (n={esc(n)}): not counted</li>" for t, m, row, n in f["uncounted"]]
            flags = [f'<li>{esc(t)} <code>{esc(m)}</code>: {esc(row)} is marked best on a metric the meta-evaluation '
                     f"flags ({esc(why)})</li>" for t, m, row, why in f["flagged"]]
            flags += [f"<li>{esc(t)}: {esc(row)} is not better than the random control on deletion (del_morf_zeros; deletion_auc on older boards; Holm-adjusted "
                      f"p={esc(p)})</li>" for t, row, p in f["not_random"]]
            n_hold = sum(w[3] for w in f["wins"])
            if fam == CONTROL:
                won = '<span class="muted">a control: never ranked</span>'
            else:
                held = f' ({n_hold} {"holds" if n_hold == 1 else "hold"} after Holm)' if f["wins"] else ""
                uncounted = f", {len(f['uncounted'])} on subsets, not counted" if f["uncounted"] else ""
                won = (f'<span class="num">{len(f["wins"])}</span>{held}'
                       + _where(wins, f"where ({len(f['wins'])}{uncounted})"))
            flag_text = (f"{_n(len(f['flagged']), 'best mark')} on flagged metrics, {_n(len(f['not_random']), 'row')} not "
                         "better than random" + _where(flags, "where") if flags else '<span class="muted">none</span>')
            rows.append(f'<tr data-task="{esc(stem)}" data-family="{esc(fam)}"><td>{esc(stem)}</td>'
                        f"<td><strong>{esc(fam)}</strong></td><td>{esc(', '.join(sorted(f['members'])))}</td>"
                        f'<td class="num">{len(f["boards"])}</td><td class="wins">{won}</td>'
                        f'<td class="flags-cell">{flag_text}</td></tr>')
    table = ('<div class="scroll"><table class="summary" id="family-summary"><thead><tr><th>task</th><th>family</th>'
             '<th>members that ran</th><th title="public boards where a member ran">boards</th>'
             f'<th title="cells shaded best on a headline metric ({esc(", ".join(n for v in HEADLINE.values() for n in v))})'
             '; lead tested against the runner-up, Holm-corrected over the table">wins on a headline metric</th>'
             '<th title="a best mark on a metric the meta-evaluation flags; a member not better than the random '
             f'control">flagged</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>') if rows else ""
    return lines, table


def _summary(boards: list[dict]) -> str:
    public = [b for b in boards if board_kind(b) != "dev"]
    if not public:
        return ""
    low = [b for b in public if below_floor(b)]
    flagged: dict = {}
    for b in public:
        for p in b["parts"].values():
            for k in p.get("flags", {}):
                flagged.setdefault(k, set()).add(b["title"])
    wins = _wins(public)
    family_lines, family_table = _family_summary(public)
    lines = [f"{len(public)} public boards ({sum(board_kind(b) == 'main' for b in public)} published dataset × model "
             f"boards, {sum(board_kind(b) == 'zoo' for b in public)} model-zoo cells, "
             f"{sum(board_kind(b) == 'seed' for b in public)} seed boards of the meta-evaluation, "
             f"{sum(board_kind(b) == 'truth' for b in public)} ground-truth boards)."]
    if low:
        lines.append(f"{len(low)} boards come from models below their dataset's accuracy floor ("
                     + ", ".join(f"{esc(d)} {f:g}" for d, f in sorted({(b['dataset'], floor_of(b['dataset']))
                                                                          for b in low})) + "); their pages say so.")
    if flagged:
        top = sorted(flagged.items(), key=lambda kv: -len(kv[1]))
        lines.append("Metrics the meta-evaluation flags (do not rank by them alone): "
                     + ", ".join(f"<code>{esc(k)}</code> on {len(v)} boards" for k, v in top) + ".")
    for stem in HEADLINE:
        top = sorted(((len(v["sig"]), len(v["ns"]), m) for (st, m), v in wins.items() if st == stem and v["sig"] + v["ns"]),
                     reverse=True)[:4]
        if top:
            lines.append(f"{esc(table_of(stem).title)}: most often best on a headline metric: " + ", ".join(
                f"<strong>{esc(m)}</strong> ({a + b}× on {len(wins[stem, m]['boards'])} boards, {a} with a lead that "
                "holds after Holm correction)" for a, b, m in top) + ".")
    lines += family_lines
    rows = []
    for (stem, method), s in sorted(wins.items(), key=lambda kv: (kv[0][0], -len(kv[1]["sig"]), -len(kv[1]["ns"]),
                                                                 kv[0][1])):
        tip = esc("; ".join(s["sig"] + [x + " (not significant)" for x in s["ns"]]))
        rows.append(f'<tr data-method="{esc(method)}"><td>{esc(stem)}</td><td><strong>{esc(method)}</strong></td>'
                    f'<td class="num">{len(s["boards"])}</td><td class="num" title="{tip}">{len(s["sig"])}</td>'
                    f'<td class="num" title="{tip}">{len(s["ns"])}</td><td class="num">{len(s["not_random"])}</td></tr>')
    metrics = {k: ", ".join(v) for k, v in HEADLINE.items()}
    table = ('<div class="scroll"><table class="summary"><thead><tr><th>task</th><th>method</th><th>boards</th>'
             '<th title="best on a headline metric, lead significant after Holm correction">best, significant</th>'
             '<th title="best on a headline metric, lead not shown after Holm correction">best, not significant</th>'
             '<th title="boards where it is not better than the random control on deletion (del_morf_zeros; deletion_auc on older boards)">not better than '
             f'random</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
    return (f'<section class="headline" id="summary"><h2>Across boards</h2><ul>{"".join(f"<li>{x}</li>" for x in lines)}'
            f"</ul><p>How often each method is best on a headline metric (counterfactuals: {esc(metrics.get(COUNTERFACTUALS.stem))}; "
            f"attributions: {esc(metrics.get(ATTRIBUTIONS.stem))}) across the public boards, counting only cells shaded "
            f"best (n ≥ 10, no smaller subset, no flagged column); hover a count for the boards.</p>"
            '<h3 id="families">By method family</h3><p>Families as grouped in <code>bench/site/families.py</code> '
            "(a method it does not name is under “other”): where a member is best on a headline metric and whether "
            "the lead holds after Holm correction, where a member is flagged, and on how many public boards the family "
            f"ran.</p>{family_table}"
            f"<details><summary>Per method: wins, and boards where it is not better than random</summary>{table}</details>"
            "</section>")


def short_finding(b: dict) -> str:
    """One line per board for the index: who is best on each headline metric, and whether the lead holds."""
    out = []
    for stem, p in b["parts"].items():
        df, flagged = p["csv"], p.get("flags", {})
        small = small_rows(df)
        for name in HEADLINE.get(stem, ()):
            if name not in df:
                continue
            if name in flagged:
                out.append(f"{esc(name)}: flagged")
                continue
            best = [r for _, r in df.iterrows() if shade_best(r, name, small, flagged)]
            if best:
                r = best[0]
                holds = num(r.get(f"{name}_p_next_holm", "")) < ALPHA
                out.append(f"{esc(name)}: <strong>{esc(r['method'])}</strong>"
                           + (" (lead holds)" if holds else " (lead not significant)"))
    return "; ".join(out)


def _board_row(b: dict) -> str:
    acc = num(b["accuracy"])
    floor = floor_of(b["dataset"])
    warn = ' <span class="flag">below floor</span>' if below_floor(b) else ""
    return (f'<tr><td><a href="{b["id"]}/index.html">{esc(b["title"])}</a></td><td>{esc(b["dataset"])}</td>'
            f'<td>{esc(b["model"])}</td><td class="num">{esc(b["n_errors"])}</td>'
            f'<td class="num">{fmt(acc) if math.isfinite(acc) else "–"}{warn}'
            f'{f" <span class=muted>(floor {floor:g})</span>" if floor else ""}</td>'
            f'<td>{esc(", ".join(b["parts"]))}</td><td>{esc(b["created"][:10])}</td><td>{esc(b["note"])}</td></tr>')


def _boards_table(boards: list[dict]) -> str:
    return ('<div class="scroll"><table><thead><tr><th>board</th><th>dataset</th><th>model</th><th>errors</th>'
            '<th>test accuracy</th><th>tables</th><th>created</th><th>note</th></tr></thead><tbody>'
            + "".join(_board_row(b) for b in boards) + "</tbody></table></div>")


def _search(boards: list[dict], extras: list[dict]) -> str:
    """A search box over boards, methods, metrics and study pages (the entries are in the page: no network)."""
    entries = [dict(label=b["title"], kind="board", href=f"{b['id']}/index.html") for b in boards
               if board_kind(b) != "dev"]
    entries += [dict(label=e["title"], kind=e["kind"], href=e["href"]) for e in extras]
    seen = set()
    for b in boards:
        if board_kind(b) == "dev":
            continue
        for stem, p in b["parts"].items():
            for m in (p["prov"] or {}).get("metrics", []):
                if ("metric", m["name"]) not in seen:
                    seen.add(("metric", m["name"]))
                    entries.append(dict(label=m["name"], kind="metric", detail=m.get("definition", ""),
                                        href=f"{b['id']}/index.html#def-{stem}-{m['name']}"))
            for method in p["csv"]["method"]:
                if ("method", method) not in seen:
                    seen.add(("method", method))
                    entries.append(dict(label=method, kind=f"method ({stem})",
                                        href=f"{b['id']}/index.html#{stem}"))
    data = json.dumps(entries, ensure_ascii=False).replace("</", "<\\/")
    return ('<div class="search"><label for="search">Search methods, metrics and boards</label> '
            '<input id="search" type="search" placeholder="e.g. lime, l2, zoo" autocomplete="off">'
            '<ul id="search-results" aria-live="polite"></ul></div>'
            f'<script id="search-data" type="application/json">{data}</script>')


def index_page(boards: list[dict], extras: list[dict]) -> str:
    """The front page: what bench is, the cross-board summary, search, boards by dataset and model, the
    study and meta-evaluation pages, and (for developers) the regression baselines."""
    by_kind: dict = {}
    for b in boards:
        by_kind.setdefault(board_kind(b), []).append(b)
    body = ["<p>Counterfactual and attribution methods, ranked on the errors (misclassified test images) of image "
            "classifiers. Every number carries its interval (by its kind), its n and a provenance record; every board "
            "opens with its finding and the caveats that limit it.</p>", _summary(boards), _search(boards, extras)]
    main = by_kind.get("main", [])
    if main:
        datasets = sorted({b["dataset"] or "other" for b in main})
        body.append("<h2>Boards by dataset and model</h2>")
        for d in datasets:
            group = [b for b in main if (b["dataset"] or "other") == d]
            floor = floor_of(d)
            body.append(f"<h3>{esc(d)}</h3>" + (f'<p class="muted">Accuracy floor {floor:g}.</p>' if floor else "")
                        + '<ul class="cards-list">' + "".join(
                            f'<li><a href="{b["id"]}/index.html">{esc(b["model"] or b["title"])}</a> '
                            f'<span class="muted">{esc(b["title"])}, {esc(b["n_errors"])} errors, test accuracy '
                            f'{fmt(b["accuracy"])}</span>{" <span class=flag>below floor</span>" if below_floor(b) else ""}'
                            f'<br><span class="finding">{short_finding(b)}</span></li>' for b in group) + "</ul>")
    truth = by_kind.get("truth", [])
    if truth:
        body.append(f"<h2>Ground truth: controlled sets</h2><p>{esc(TRUTH_NOTE)}.</p>" + '<ul class="cards-list">' + "".join(
            f'<li><a href="{b["id"]}/index.html">{esc(b["title"])}</a> <span class="muted">{esc(b["n_errors"])} '
            f'{"errors" if b.get("rows", "errors") == "errors" else "correct predictions"}, test accuracy '
            f'{fmt(b["accuracy"])}</span><br><span class="finding">{short_finding(b)}</span></li>' for b in truth)
            + "</ul>")
    studies = [e for e in extras if e["kind"] == "study"]
    metas = [e for e in extras if e["kind"] == "meta"]
    if studies or by_kind.get("zoo"):
        body.append("<h2>Studies</h2><ul>" + "".join(
            f'<li><a href="{e["href"]}">{esc(e["title"])}</a>: a backbone × attention grid of models, each trained '
            f"with several seeds, with the headline scores and test accuracy of every cell</li>" for e in studies)
            + "</ul>")
        if by_kind.get("zoo"):
            body.append(f"<details><summary>Every study cell board ({len(by_kind['zoo'])})</summary>"
                        f"{_boards_table(by_kind['zoo'])}</details>")
    if metas or by_kind.get("seed"):
        body.append("<h2>Meta-evaluation: which metrics to trust</h2><ul>" + "".join(
            f'<li><a href="{e["href"]}">{esc(e["title"])}</a></li>' for e in metas if "zoo" not in e["title"]) + "</ul>")
        zoo_meta = [e for e in metas if "zoo" in e["title"]]
        if zoo_meta:
            body.append(f"<details><summary>Per study model ({len(zoo_meta)})</summary><ul>" + "".join(
                f'<li><a href="{e["href"]}">{esc(e["title"])}</a></li>' for e in zoo_meta) + "</ul></details>")
        if by_kind.get("seed"):
            body.append(f"<p>Seed boards ({esc(SEEDS_NOTE)}):</p>{_boards_table(by_kind['seed'])}")
    other = [e for e in extras if e["kind"] == "tables"]
    if other:
        body.append("<h2>Other tables</h2><ul>" + "".join(
            f'<li><a href="{e["href"]}">{esc(e["title"])}</a></li>' for e in other) + "</ul>")
    if by_kind.get("dev"):
        body.append("<h2>For developers</h2><p>Regression baselines of <code>bench check</code>: small runs that test "
                    "bench itself, not leaderboards (do not cite them).</p>" + _boards_table(by_kind["dev"]))
    body.append('<p class="muted">Column definitions: each board\'s Metric definitions, and leaderboards/README.md. '
                'To put your own method or model on a board: <a href="add-a-method.html">how to add a method or a '
                "model</a>.</p>")
    return page("bench leaderboards", "\n".join(body), 0)
