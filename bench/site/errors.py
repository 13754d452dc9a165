"""Per-error drill-down pages: the error, every solver's counterfactual and change map, every
method's heatmap, and the per-instance scores behind each leaderboard cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.board import COUNTERFACTUALS, fmt, table
from bench.site.caveats import below_floor, floor_of
from bench.site.html import esc, metric_label, metric_tip, page, short_reason, sortable_table
from bench.site.images import grey_uri, signed_uri

CF = COUNTERFACTUALS.stem


def _groups(inst: pd.DataFrame) -> list[tuple[str, str, dict]]:
    """(method, mode, {test_index text: (position in the entry, row)}) per entry, in the CSV's order."""
    out = {}
    for _, r in inst.iterrows():
        rows = out.setdefault((r["method"], r["mode"]), {})
        rows[r["test_index"]] = (len(rows), r)
    return [(m, mode, rows) for (m, mode), rows in out.items()]


def _status(stem: str, row: pd.Series | None) -> tuple[str, str]:
    """(css class, text) of one entry on one error: ok, failed (reason) or not run."""
    if row is None:
        return "notrun", "not run"
    valid = row.get("validity", "")
    if stem == CF and (row["success"] == "False" or (valid != "" and float(valid) < 0.5)):
        reason = row["reason"] or ("solver reported success but the model does not predict the target"
                                   if row["success"] == "True" else "no reason given")
        return "failed", f"failed ({reason})"
    return "ok", "flipped" if stem == CF else "explained"


def _card(stem: str, method: str, mode: str, row, image: np.ndarray | None, x: np.ndarray) -> str:
    """One entry on one error: status, and x_cf with its change map, or the heatmap (each on its own scale)."""
    cls, text = _status(stem, row)
    title = esc(method) + (f" <span class=\"muted\">({esc(mode)})</span>" if mode else "")
    figs = ""
    if image is not None and stem == CF:
        uri, scale = signed_uri(image.astype(np.float32) - x)
        label = "x_cf" if cls == "ok" else "x_cf (not valid)"
        caption = f"change, scale ±{scale:.2g}" if scale > 0 else "no change"
        figs = (f'<figure><img class="px" src="{grey_uri(image)}" alt="{esc(method)} counterfactual">'
                f'<figcaption>{label}</figcaption></figure>'
                f'<figure><img class="px" src="{uri}" alt="{esc(method)} {caption}">'
                f'<figcaption>{caption}</figcaption></figure>')
    elif image is not None:
        uri, scale = signed_uri(image)
        caption = f"class {esc(row['explained'])}, " + (f"scale ±{scale:.2g}" if scale > 0 else "all zero")
        figs = (f'<figure><span class="on-digit"><img class="px heat" src="{uri}" alt="{esc(method)} heatmap, '
                f'{caption}"></span><figcaption>{caption}</figcaption></figure>')
    return (f'<div class="card {cls}"><h4>{title}</h4><p class="status {cls}">{esc(text)}</p>'
            f'<div class="imgs">{figs}</div></div>')


def _notrun_card(entries: list[str]) -> str:
    """One card for every entry that did not run on this error (each ran on a documented subset)."""
    return (f'<div class="card notrun"><h4>not run on this error</h4><p class="status notrun">not run</p>'
            f'<p>outside the documented subset of: {", ".join(entries)}.</p></div>')


def _score_cell(row, m: dict, cls: str) -> tuple:
    """A per-instance score: the CSV's value, or – where it means nothing (distance of a failed row)."""
    if cls == "failed" and m.get("valid_only"):
        return "", '<span title="valid counterfactuals only">–</span>', "num"
    return row[m["name"]], fmt(row[m["name"]]), "num"


def _failed_card(f: dict) -> str:
    return (f'<div class="card failed"><h4>{esc(f["method"])}</h4><div class="status failed">'
            f'failed ({short_reason(f["reason"])})</div><p>the method crashed in this run and is left out of the table.'
            "</p></div>")


def _section(stem: str, part: dict, t: int, x: np.ndarray) -> str:
    """One task's cards and per-instance score table for error `t`."""
    inst, arrays = part["inst"]
    metrics = [m for m in (part["prov"] or {}).get("metrics", []) if m["name"] in inst]
    cards, rows, notrun = [], [], []
    with_mode = bool((inst["mode"] != "").any())
    for method, mode, by_t in part["groups"]:
        if str(t) not in by_t:  # listed once below, no row: a page per error stays small on a subset board
            notrun.append(f"{esc(method)}{f' ({esc(mode)})' if mode else ''} (first {len(by_t)})")
            continue
        j, row = by_t[str(t)]
        cards.append(_card(stem, method, mode, row, arrays[f"{method}|{mode}"][j], x))
        cls, text = _status(stem, row)
        cells = [(method, f"<strong>{esc(method)}</strong>", "")] + ([(mode, esc(mode), "")] if with_mode else [])
        cells.append((text, f'<span class="status {cls}">{esc(text)}</span>', ""))
        cells += [_score_cell(row, m, cls) for m in metrics]
        rows.append(({"data-method": method, "data-mode": mode}, cells))
    failed = (part["prov"] or {}).get("failed", [])
    cards += [_failed_card(f) for f in failed] + ([_notrun_card(notrun)] if notrun else [])
    for f in failed:
        rows.append(({"data-method": f["method"], "data-mode": ""}, [(f["method"], esc(f["method"]), "")]
                     + ([("", "", "")] if with_mode else []) + [("failed", f'<div class="status failed">failed '
                                                                  f'({short_reason(f["reason"])})</div>', "")]
                     + [("", "–", "num")] * len(metrics)))
    cols = ([dict(label="method", name="method", numeric=False)] + ([dict(label="mode", name="mode", numeric=False)]
            if with_mode else []) + [dict(label="status", name="status", numeric=False)]
            + [dict(label=metric_label(m), name=m["name"], numeric=True, tip_ref=f"{stem}/{m['name']}",
                    first="descending" if m.get("higher_is_better") else "ascending") for m in metrics])
    intro = ("Each change map x_cf − x is drawn on its own colour scale, printed under it (red = ink added, "
             "blue = removed); red border = failed; hatched = entries not run on this error." if stem == CF else
             "Each heatmap is drawn over the faint digit on its own scale ±max|attr|, printed under it "
             "(red = evidence for the explained class, blue = against).")
    t = table(stem)
    name = t.instances().name
    scores = (f'<h3>Per-instance scores</h3><p class="downloads">Download (every error): <a href="../files/{name}" '
              f'download>{name}</a></p>' + sortable_table(cols, rows, f"{stem}-instances") if rows else "")
    return f'<h2 id="{stem}">{t.title}</h2><p class="muted">{intro}</p><div class="cards">{"".join(cards)}</div>{scores}'


def error_pages(board: dict, out: Path) -> list[dict]:
    """Write errors/<test_index>.html for every error of a board that some entry ran on.

    Args:
        board: the board dict of `build.load_board` (parts with `inst` = (text DataFrame, arrays)).
        out: the board's folder in the site.

    Returns:
        One dict per error (test_index, true, pred, thumb URI, href, summary) for the board's gallery;
        empty when the board has no per-instance data.
    """
    parts = {s: dict(p, groups=_groups(p["inst"][0])) for s, p in board["parts"].items() if p.get("inst")}
    if not parts:
        return []
    arrays = next(iter(parts.values()))["inst"][1]
    # a page per error some entry ran on: a study cell explains the first N of thousands of errors
    ran = {str(t) for p in parts.values() for _, _, rows in p["groups"] for t in rows}
    keep = [k for k, t in enumerate(arrays["errors_index"].tolist()) if str(t) in ran]
    idx, true, pred = (arrays[k][keep].tolist() for k in ("errors_index", "errors_true", "errors_pred"))
    n_all = len(arrays["errors_index"])
    of_all = f" explained, {n_all} in all" if len(keep) < n_all else ""
    (out / "errors").mkdir(parents=True, exist_ok=True)
    tips = {f"{s}/{m['name']}": metric_tip(m) for s, p in parts.items() for m in (p["prov"] or {}).get("metrics", [])}
    (out / "tips.js").write_text("window.BENCH_TIPS = " + json.dumps(tips, ensure_ascii=False, indent=0) + ";\n")
    floor = floor_of(board.get("dataset", ""))
    caveat = (f'<p class="banner caveats">The model\'s test accuracy is {fmt(board["accuracy"])}, below the '
              f'{esc(board["dataset"])} floor of {floor:g}: see <a href="../index.html#caveats">the board\'s caveats</a>.'
              "</p>" if below_floor(board) else "")
    items = []
    for k, t in enumerate(idx):
        x = arrays["errors"][keep[k]].astype(np.float32)
        pager = " ".join(f'<a href="{idx[j]}.html">{label}</a>' for j, label in ((k - 1, "← previous"),
                                                                                  (k + 1, "next →"))
                         if 0 <= j < len(idx))
        hero = (f'<div class="hero"><img class="px" src="{grey_uri(x)}" alt="test image {t}: true {true[k]}, '
                f'predicted {pred[k]}"><div><p>Test image <strong>#{t}</strong> (error {k + 1} of {len(idx)}{of_all})</p>'
                f'<p>true class <strong id="true">{true[k]}</strong>, predicted <strong id="pred">{pred[k]}</strong>'
                f'</p><p class="pager">{pager}</p></div></div>')
        body = caveat + hero + "".join(_section(s, p, t, x) for s, p in parts.items())
        crumbs = [("index", "../../index.html"), (board["title"], "../index.html")]
        title = f"{board['title']}: error #{t} (true {true[k]}, predicted {pred[k]})"
        faint = grey_uri(1 - 0.6 * x)  # grey ink on white, once per page, under every heatmap
        digit = (f"<style>.on-digit {{ background-image: url({faint}); }}</style>\n"
                 '<script src="../tips.js"></script>\n')
        (out / "errors" / f"{t}.html").write_text(page(title, body, 2, crumbs, digit))
        items.append(dict(test_index=t, true=true[k], pred=pred[k], thumb=grey_uri(x), href=f"errors/{t}.html",
                          summary=_summary(parts, t)))
    return items


def _summary(parts: dict, t: int) -> str:
    """A gallery line: how many solvers flipped this error, of those that ran on it."""
    if CF not in parts:
        return ""
    ran = [by_t[str(t)][1] for _, _, by_t in parts[CF]["groups"] if str(t) in by_t]
    if not ran:  # only attribution methods ran on this error
        return ""
    return f"{sum(_status(CF, r)[0] == 'ok' for r in ran)} of {len(ran)} solvers flipped it"
