"""The site a reader sees (issue 26), in real Chromium over the site built from the committed boards: no
markup as text, figures open full size, flagged columns, subset rows and controls not shaded best, the
below-floor banner, the headline's best method, the index's family summary, URL sort and filter state,
the compare view, a 390 px phone, the zoo grid.

CI builds the site with `python -m bench site` and runs this file on that build (BENCH_SITE=<folder>);
without BENCH_SITE the site is built once for the module."""

import os
from pathlib import Path

import pandas as pd
import pytest

from bench.board import fmt
from bench.site import build_site
from tests import test_site as base
from tests.test_site import ROOT, _expected, _open, _order

browser = base.browser  # the same headless Chromium fixture (module-scoped: one browser for this file)


@pytest.fixture(scope="module")
def committed_site(tmp_path_factory):
    """The site of every committed board, built once per module (or the one CI built: BENCH_SITE)."""
    if os.environ.get("BENCH_SITE"):
        return Path(os.environ["BENCH_SITE"])
    out = tmp_path_factory.mktemp("committed") / "site"
    stats = build_site(ROOT / "leaderboards", out)
    print(f"committed site: {stats}")
    return out


def test_site_from_committed_boards(committed_site):
    """Every committed board gets a page whose numbers are the CSV's; boards without instance files say so."""
    index = (committed_site / "index.html").read_text()
    page = (committed_site / "mnist-cnn" / "index.html").read_text()
    assert 'href="mnist-cnn/index.html"' in index and "fashion-mnist" in index
    cf = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "counterfactuals.csv", dtype=str, keep_default_na=False)
    for _, r in cf.iterrows():
        assert f'data-method="{r["method"]}"' in page
        assert f'<td data-value="{r["l2"]}" class="num' in page and f"[{fmt(float(r['l2_lo']))}, " in page
    has_instances = (ROOT / "leaderboards" / "mnist" / "cnn" / "counterfactuals_instances.csv").exists()
    assert ('id="no-instances"' in page) != has_instances
    assert (committed_site / "mnist-cnn" / "files" / "counterfactuals.csv").exists()
    assert "python -m bench run" in page and "weights sha256" in page  # provenance: reproduce command, hashes
    assert "Built " in page and "commit <code>" in page  # every page says when and from what it was built
    assert (committed_site / "mnist-zoo" / "index.html").exists() and (committed_site / "mnist-cnn-meta" / "index.html").exists()
    assert not list(committed_site.glob("tables/*-*.html"))  # stable page names, not numbered ones


LEAKS = ("<!--", "|---|", "| --- |", "0/0 flipped")


def _board_dirs(site: Path) -> list[Path]:
    return sorted(p for p in site.iterdir() if (p / "files").is_dir())


def _text(d) -> str:
    return d.execute_script("return document.body.innerText")


def _cell_classes(d, table_id: str, name: str) -> list[str]:
    """The class of every body cell in the column named `name`."""
    return d.execute_script(
        "var t = document.getElementById(arguments[0]), ths = t.tHead.rows[0].cells, j = -1;"
        "for (var i = 0; i < ths.length; i++) if (ths[i].getAttribute('data-name') === arguments[1]) j = i;"
        "return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[j].className; });",
        table_id, name)


@pytest.mark.slow
def test_no_page_shows_markup_as_text(browser, committed_site):
    """No page shows an HTML comment, a raw Markdown table or an empty "0/0 flipped" as text."""
    pages = [committed_site / "index.html", committed_site / "add-a-method.html"]
    pages += [p / "index.html" for p in sorted(committed_site.iterdir()) if (p / "index.html").exists()]
    pages += [p / "compare.html" for p in _board_dirs(committed_site)[:3]]
    for path in pages:  # every board, study and meta-evaluation page, in the browser
        _open(browser, path)
        text = _text(browser)
        assert not [x for x in LEAKS if x in text], f"{path.relative_to(committed_site)} shows markup as text"
    for path in committed_site.rglob("errors/*.html"):  # every per-error page, as served
        html = path.read_text()
        assert "&lt;!--" not in html and "0/0 flipped" not in html, path


@pytest.mark.slow
def test_every_figure_opens_full_size(browser, committed_site):
    from selenium.webdriver.common.by import By

    pages = [committed_site / "mnist-cnn" / "index.html", committed_site / "mnist-zoo" / "index.html",
             committed_site / "mnist-cnn-meta" / "index.html"]
    seen = 0
    for path in pages:
        _open(browser, path)
        figs = browser.find_elements(By.CSS_SELECTOR, "figure.fig")
        assert figs, path
        for fig in figs:
            img, link = fig.find_element(By.TAG_NAME, "img"), fig.find_element(By.CSS_SELECTOR, "a.zoom")
            assert link.get_attribute("href") == img.get_attribute("src")
            alt, caption = img.get_attribute("alt"), fig.find_element(By.TAG_NAME, "figcaption").text
            assert len(alt) > 40 and not alt.endswith(".png") and len(caption) > 60  # they describe the figure
            seen += 1
        first = figs[0].find_element(By.CSS_SELECTOR, "a.zoom")
        href = first.get_attribute("href")
        browser.execute_script("arguments[0].scrollIntoView()", first)
        first.click()
        assert browser.current_url == href and href.endswith(".png")
        natural = browser.execute_script("var i = document.images[0]; return [i.naturalWidth, i.complete]")
        assert natural[1] and natural[0] > 600  # the PNG itself, at its own size (zoomable)
    assert seen >= 5


def _flag_case(site: Path):
    """A board table whose meta-evaluation flags a column the CSV marks best in some row (else any flag)."""
    from bench.site.caveats import split_flags

    fallback = None
    for folder in sorted((ROOT / "leaderboards").rglob("*.md")):
        if folder.stem not in ("counterfactuals", "attributions") or "site" in folder.parts:
            continue
        _, flags, _ = split_flags(folder.read_text())
        csv = pd.read_csv(folder.with_suffix(".csv"), dtype=str, keep_default_na=False)
        board_id = folder.parent.relative_to(ROOT / "leaderboards").as_posix().replace("/", "-")
        for name in flags:
            if name in csv and (csv.get(f"{name}_best", pd.Series(dtype=str)) == "True").any():
                return board_id, folder.stem, name, True
            fallback = fallback or (board_id, folder.stem, name, False)
    return fallback


def _small_case():
    """A board row on fewer errors than the table's fullest row (mnist/cnn's alibi_wachter: 5 of 91)."""
    from bench.site.caveats import small_rows

    best = None
    for path in sorted((ROOT / "leaderboards").rglob("*.csv")):
        if path.name not in ("counterfactuals.csv", "attributions.csv") or "site" in path.parts:
            continue
        csv = pd.read_csv(path, dtype=str, keep_default_na=False)
        board_id = path.parent.relative_to(ROOT / "leaderboards").as_posix().replace("/", "-")
        for key in sorted(small_rows(csv)):
            row = csv[(csv["method"] + "|" + csv["mode"]) == key].iloc[0]
            marked = [c[:-5] for c in csv if c.endswith("_best") and row[c] == "True"]
            case = (board_id, path.stem, key.split("|"), marked)
            if marked:
                return case
            best = best or case
    return best


@pytest.mark.slow
def test_flagged_columns_and_subset_rows_are_not_shaded_best(browser, committed_site):
    from selenium.webdriver.common.by import By

    case = _flag_case(committed_site)
    assert case, "no committed board carries a meta-evaluation flag"
    board_id, stem, name, marked_in_csv = case
    _open(browser, committed_site / board_id / "index.html")
    th = browser.find_element(By.CSS_SELECTOR, f'#{stem}-table th[data-name="{name}"]')
    assert "flagged" in th.get_attribute("class") and "flagged" in th.text
    tip = th.find_element(By.TAG_NAME, "button").get_attribute("data-tip")
    assert "FLAGGED by the meta-evaluation" in tip  # the reason, on hover and on focus
    assert not [c for c in _cell_classes(browser, f"{stem}-table", name) if "best" in c.split()], marked_in_csv
    assert name in browser.find_element(By.CSS_SELECTOR, ".flags").text

    board_id, stem, (method, mode), marked = _small_case()
    _open(browser, committed_site / board_id / "index.html")
    tr = browser.find_element(By.CSS_SELECTOR, f'#{stem}-table tr[data-method="{method}"][data-mode="{mode}"]')
    assert tr.get_attribute("data-small") == "true"
    assert not tr.find_elements(By.CSS_SELECTOR, "td.best"), f"{method} is shaded best on {marked}"
    assert method in browser.find_element(By.ID, "caveats").text
    control = browser.find_elements(By.CSS_SELECTOR, "#attributions-table tr.control")
    assert control and "control" in control[0].text and not control[0].find_elements(By.CSS_SELECTOR, "td.best")


@pytest.mark.slow
def test_below_floor_banner_and_headline(browser, committed_site):
    from selenium.webdriver.common.by import By

    from bench.site.caveats import ACCURACY_FLOORS

    _open(browser, committed_site / "mnist-zoo-efficientnet_b0-cbam-seed2" / "index.html")
    banner = browser.find_element(By.ID, "caveats").text
    assert "0.265" in banner and f"below the mnist floor of {ACCURACY_FLOORS['mnist']:g}" in banner
    assert "every row ran on a subset" in banner  # 10 and 20 of its 7,350 errors
    crumbs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "nav.crumbs a")]
    assert any(h.endswith("/mnist-zoo/index.html") for h in crumbs)  # a cell links back to its study
    error_page = sorted((committed_site / "mnist-zoo-efficientnet_b0-cbam-seed2" / "errors").glob("*.html"))[0]
    _open(browser, error_page)  # the per-error numbers carry the caveat too
    assert "below the mnist floor" in browser.find_element(By.CSS_SELECTOR, ".banner.caveats").text
    _open(browser, committed_site / "mnist-cnn-meta-seed1" / "index.html")
    assert "seed board of the meta-evaluation" in browser.find_element(By.TAG_NAME, "main").text
    _open(browser, committed_site / "mnist-cnn" / "index.html")  # the default preset's board
    assert "floor" not in " ".join(e.text for e in browser.find_elements(By.ID, "caveats"))
    head = browser.find_element(By.ID, "headline").text
    assert "0.991" in head
    attr = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "attributions.csv", dtype=str, keep_default_na=False)
    best = attr[attr["deletion_auc_best"] == "True"].iloc[0]
    line = next(ln for ln in head.splitlines() if ln.startswith("deletion_auc"))
    assert f"best {best['method']} ({best['mode']}) {fmt(float(best['deletion_auc']))}" in line
    p = float(best["deletion_auc_p_next_holm"])
    assert ("holds after Holm" in line) == (p < 0.05) and f"adjusted p = {fmt(p)}" in line
    _open(browser, committed_site / "index.html")  # the index says the same in one line per board
    item = browser.find_element(By.XPATH, '//ul[@class="cards-list"]/li[a[@href="mnist-cnn/index.html"]]')
    assert f"deletion_auc: {best['method']}" in item.text


@pytest.mark.slow
def test_sort_state_lives_in_the_url(browser, committed_site):
    from selenium.webdriver.common.by import By

    page = committed_site / "mnist-cnn" / "index.html"
    _open(browser, page)
    button = browser.find_element(By.CSS_SELECTOR, '#attributions-table th[data-name="insertion_auc"] button')
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()
    assert "attributions-table=insertion_auc.descending" in browser.current_url
    url = browser.current_url
    browser.get("about:blank")
    browser.get(url)  # a fresh load of the linked address restores the order
    attr = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "attributions.csv", dtype=str, keep_default_na=False)
    assert _order(browser, "attributions-table") == _expected(attr, "insertion_auc", ascending=False)
    th = browser.find_element(By.CSS_SELECTOR, '#attributions-table th[data-name="insertion_auc"]')
    assert th.get_attribute("aria-sort") == "descending"


@pytest.mark.slow
def test_compare_view_shows_paired_differences(browser, committed_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    inst = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "attributions_instances.csv")
    a, b = inst[inst["method"] == "lime"], inst[inst["method"] == "ig"]
    both = a.merge(b, on="test_index", suffixes=("_a", "_b")).dropna(subset=["deletion_auc_a", "deletion_auc_b"])
    diff = (both["deletion_auc_a"] - both["deletion_auc_b"]).mean()
    page = committed_site / "mnist-cnn" / "compare.html"
    browser.get(page.as_uri() + "#cmp=attributions,lime|predicted,ig|predicted,deletion_auc")
    row = browser.find_element(By.CSS_SELECTOR, '#compare-table tr[data-metric="deletion_auc"]')
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert int(cells[1]) == len(both) and float(cells[4]) == pytest.approx(diff, rel=0.01, abs=5e-4)
    assert int(cells[5]) == int((both["deletion_auc_a"] < both["deletion_auc_b"]).sum())  # ↓: lower is better
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-errors tbody tr")) == len(both)
    Select(browser.find_element(By.ID, "cmp-b")).select_by_value("deeplift|predicted")
    assert "deeplift%7Cpredicted" in browser.current_url or "deeplift|predicted" in browser.current_url
    assert "lime (predicted) against deeplift (predicted)" in browser.find_element(By.ID, "compare-status").text


@pytest.mark.slow
def test_phone_width_has_no_horizontal_page_scroll(browser, committed_site):
    pages = ["index.html", "mnist-cnn/index.html", "mnist-zoo/index.html", "mnist-cnn-meta/index.html",
             "mnist-zoo-efficientnet_b0-cbam-seed2/index.html", "mnist-cnn/compare.html", "add-a-method.html"]
    pages.append(sorted((committed_site / "mnist-cnn" / "errors").glob("*.html"))[0].relative_to(committed_site))
    browser.set_window_size(390, 844)
    try:
        for p in pages:
            _open(browser, committed_site / p)
            width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{p}: the page is {width[0]} px wide at {width[1]} px"
    finally:
        browser.set_window_size(1366, 860)


@pytest.mark.slow
def test_zoo_grid_and_score_selector(browser, committed_site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    study = pd.read_csv(ROOT / "leaderboards" / "mnist" / "zoo" / "study.csv", dtype=str, keep_default_na=False)
    labels = study[study["seed"] == "all"]["label"]
    _open(browser, committed_site / "mnist-zoo" / "index.html")
    visible = [g for g in browser.find_elements(By.CSS_SELECTOR, ".grid-score") if g.is_displayed()]
    assert len(visible) == 1 and visible[0].get_attribute("data-score") == "test_accuracy"
    cells = visible[0].find_elements(By.CSS_SELECTOR, "tbody td[data-value]")
    assert len(cells) == len(labels)
    Select(browser.find_element(By.ID, "score")).select_by_value("ig.deletion_auc")
    assert "score=ig.deletion_auc" in browser.current_url
    shown = [g for g in browser.find_elements(By.CSS_SELECTOR, ".grid-score") if g.is_displayed()]
    assert [g.get_attribute("data-score") for g in shown] == ["ig.deletion_auc"]
    assert "accuracy" in shown[0].text


@pytest.mark.slow
def test_sticky_header_stays_while_rows_scroll(browser, committed_site):
    """A long table scrolls inside its box, and its header row stays at the box's top (not scrolled away)."""
    _open(browser, committed_site / "mnist-cnn" / "index.html")
    top = browser.execute_script(
        "var t = document.getElementById('attributions-table'), box = t.parentNode;"
        "box.scrollIntoView(); box.scrollTop = 400;"
        "return [box.scrollTop, t.tHead.rows[0].cells[3].getBoundingClientRect().top - box.getBoundingClientRect().top];")
    assert top[0] > 100 and abs(top[1]) <= 2, top


@pytest.mark.slow
def test_search_finds_methods_metrics_and_boards(browser, committed_site):
    from selenium.webdriver.common.by import By

    _open(browser, committed_site / "index.html")
    box = browser.find_element(By.ID, "search")
    for query, kind in (("kernel_shap", "method"), ("insertion_auc", "metric"), ("zoo", "board")):
        box.clear()
        box.send_keys(query)
        found = browser.find_elements(By.CSS_SELECTOR, "#search-results li")
        assert any(query in li.text and kind in li.text for li in found), (query, [li.text for li in found][:5])
    dev = browser.execute_script("return document.getElementById('search-data').textContent")
    assert '"ci"' not in dev  # the regression baselines are not searchable as a public board
    link = browser.find_element(By.CSS_SELECTOR, "#search-results li a")
    href = link.get_attribute("href")
    link.click()
    assert browser.current_url == href


@pytest.mark.slow
def test_meta_evaluation_defines_every_column(browser, committed_site):
    from selenium.webdriver.common.by import By

    _open(browser, committed_site / "mnist-cnn-meta" / "index.html")
    names = [th.get_attribute("data-name") for th in browser.find_elements(
        By.CSS_SELECTOR, "#meta-attributions thead th, #meta-counterfactuals thead th")]
    assert "separated_share" in names and "seed_tau" in names
    undefined = [n for n in set(names) if not browser.find_elements(By.ID, f"col-{n}")]
    assert not undefined, f"columns without a definition: {undefined}"
    assert browser.find_elements(By.CSS_SELECTOR, "figure.chart svg rect")  # the separation chart
    assert "Unnamed" not in browser.find_element(By.TAG_NAME, "main").get_attribute("textContent")


def _family_wins(site_row) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [(li.get_attribute("data-board"), li.get_attribute("data-metric"))
            for li in site_row.find_elements(By.CSS_SELECTOR, "li[data-board]")]


@pytest.mark.slow
def test_index_family_summary_names_the_deletion_auc_winner(browser, committed_site):
    """The index's per-family summary puts mnist/cnn's deletion_auc win under the family of the method the
    CSV marks best, says whether its lead holds after Holm, and no other family claims that cell."""
    from selenium.webdriver.common.by import By

    from bench.site.families import family_of

    attr = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "attributions.csv", dtype=str, keep_default_na=False)
    best = attr[attr["deletion_auc_best"] == "True"].iloc[0]
    family = family_of("attributions", best["method"])
    holds = float(best["deletion_auc_p_next_holm"]) < 0.05
    _open(browser, committed_site / "index.html")
    rows = browser.find_elements(By.CSS_SELECTOR, '#family-summary tr[data-task="attributions"]')
    by_family = {r.get_attribute("data-family"): r for r in rows}
    assert family in by_family, (family, list(by_family))
    row = by_family[family]
    assert ("mnist/cnn", "deletion_auc") in _family_wins(row)
    li = row.find_element(By.CSS_SELECTOR, 'li[data-board="mnist/cnn"][data-metric="deletion_auc"]')
    text = li.get_attribute("textContent")
    assert best["method"] in text and ("lead holds after Holm" in text) == holds, text
    others = [f for f, r in by_family.items() if f != family and ("mnist/cnn", "deletion_auc") in _family_wins(r)]
    assert not others, others
    cells = row.find_elements(By.TAG_NAME, "td")
    assert int(cells[3].text) >= 1  # the boards it ran on
    assert family in browser.find_element(By.ID, "summary").text  # named in the summary's sentences too


def _shown(d, table_id: str) -> list[str]:
    return d.execute_script(
        "return Array.prototype.filter.call(document.getElementById(arguments[0]).tBodies[0].rows,"
        "function (r) { return !r.hidden; }).map(function (r) { return r.getAttribute('data-method'); });", table_id)


@pytest.mark.slow
def test_filter_state_lives_in_the_url(browser, committed_site):
    """A board table's family and text filters go into the address; a reload restores both and the rows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from bench.site.families import family_of

    attr = pd.read_csv(ROOT / "leaderboards" / "mnist" / "cnn" / "attributions.csv", dtype=str, keep_default_na=False)
    _open(browser, committed_site / "mnist-cnn" / "index.html")
    assert len(_shown(browser, "attributions-table")) == len(attr)
    family = family_of("attributions", "ig_blur")
    Select(browser.find_element(By.ID, "attributions-table-family")).select_by_value(family)
    box = browser.find_element(By.ID, "attributions-table-q")
    box.send_keys("blur")
    url = browser.current_url
    assert "attributions-table.q=blur" in url and "attributions-table.family=" in url
    expected = [m for m in attr["method"] if family_of("attributions", m) == family and "blur" in m]
    assert expected and _shown(browser, "attributions-table") == expected
    browser.get("about:blank")
    browser.get(url)  # a fresh load of the linked address
    assert browser.find_element(By.ID, "attributions-table-q").get_attribute("value") == "blur"
    assert Select(browser.find_element(By.ID, "attributions-table-family")).first_selected_option.get_attribute(
        "value") == family
    assert _shown(browser, "attributions-table") == expected
    status = browser.find_element(By.CSS_SELECTOR, '.table-filter[data-for="attributions-table"] .filter-status')
    assert f"Showing {len(expected)} of {len(attr)} rows" in status.text
    box = browser.find_element(By.ID, "attributions-table-q")
    box.clear()
    box.send_keys(" ")  # an input event with an empty filter: its key leaves the address
    Select(browser.find_element(By.ID, "attributions-table-family")).select_by_value("")
    assert "attributions-table.q" not in browser.current_url and "attributions-table.family" not in browser.current_url
    assert len(_shown(browser, "attributions-table")) == len(attr)
    # a linked address with a sort and a filter: the family's rows, in the sorted order
    browser.get("about:blank")  # (a new hash on the same page would not reload it)
    browser.get((committed_site / "mnist-cnn" / "index.html").as_uri()
                + f"#attributions-table=deletion_auc.ascending&attributions-table.family={family}")
    ours = attr[[family_of("attributions", m) == family for m in attr["method"]]]
    ours = ours.assign(v=pd.to_numeric(ours["deletion_auc"], errors="coerce")).sort_values("v", kind="stable")
    assert _shown(browser, "attributions-table") == list(ours["method"])
