"""The static leaderboard site: built from the committed boards and from a small real run, then
driven in headless Chromium (Selenium, Debian's chromium + chromium-driver)."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.board import fmt, interval_digits
from bench.site import build_site
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".artifacts" / "site"
APT = "apt-get install -y chromium chromium-driver"
ATTR_METHODS = '["saliency","input_x_gradient","ig","gradcam","random"]'



def _interval(r, name: str) -> str:
    """The interval text a board page shows for a CSV cell (its kind decides; bench.stats)."""
    lo, hi, kind = r[name + "_lo"], r[name + "_hi"], r.get(name + "_ci", "")
    if not lo:
        return "(batch time)" if kind == "timing" else "(no CI)"
    d = interval_digits(float(lo), float(hi))
    return f"[{fmt(float(lo))}," if d is None else f"[{float(lo):.{d}g},"

def test_method_families_cover_the_registered_names():
    """bench/site/families.py groups every listed method; a prefix pattern (ig_*, lrp_*, alibi_*) takes new
    variants; an unknown name is "other"; families_in keeps the table's order with "other" last."""
    from bench.site.families import FAMILIES, OTHER, families_in, family_of

    expect = {"attributions": {"smoothgrad": "gradient", "ig": "integrated gradients", "ig_multi_median":
                               "integrated gradients", "gradient_shap": "DeepLift / SHAP", "counterfactual_cam": "CAM",
                               "kernel_shap": "perturbation", "lrp_epsilon": "LRP", "random": "control",
                               "my_new_method": OTHER},
              "counterfactuals": {"gradient": "white-box gradient", "growing_spheres": "black-box search",
                                  "alibi_proto_numgrad": "alibi", "sign_opt": "decision-based attacks",
                                  "saliency": OTHER}}
    for stem, names in expect.items():
        assert {m: family_of(stem, m) for m in names} == names
    assert families_in("attributions", ["zz", "random", "lime", "saliency"]) == ["gradient", "perturbation",
                                                                                "control", OTHER]
    assert OTHER not in FAMILIES["attributions"] and family_of("unknown_task", "lime") == OTHER


def test_rebuild_in_place_with_a_zoo_table(tmp_path):
    """A table that belongs to no board (a model zoo) gets its page; a rebuild replaces the site, never reads it."""
    shutil.copytree(ROOT / "leaderboards" / "mnist" / "cnn", tmp_path / "mnist" / "cnn",
                    ignore=shutil.ignore_patterns("meta"))  # its meta-evaluation holds more boards and tables
    cf = pd.read_csv(tmp_path / "mnist" / "cnn" / "counterfactuals.csv")
    cf[["method", "validity", "l2"]].to_csv(tmp_path / "zoo.csv", index=False)
    first = build_site(tmp_path)
    second = build_site(tmp_path)
    assert first["boards"] == second["boards"] == 1 and second["extra_tables"] == 1
    assert first["files"] == second["files"]
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="tables/index.html"' in index
    zoo = (tmp_path / "site" / "tables" / "index.html").read_text()
    assert all(f'data-value="{m}"' in zoo for m in cf["method"])


def test_a_subset_board_gets_pages_only_for_the_errors_it_explained(tmp_path):
    """A zoo cell explains the first 10-20 of its 2,169 errors: 20 pages, not 2,169; the gallery says so."""
    cell = ROOT / "leaderboards" / "mnist" / "zoo" / "efficientnet_b0-se-seed0"
    shutil.copytree(cell, tmp_path / "mnist" / "cell")
    ran = set()
    for stem in ("counterfactuals", "attributions"):
        ran |= set(pd.read_csv(cell / f"{stem}_instances.csv", dtype=str)["test_index"])
    n_errors = len(pd.read_csv(cell / "errors.csv"))
    assert n_errors > 10 * len(ran)
    build_site(tmp_path)
    [folder] = [p for p in (tmp_path / "site").iterdir() if (p / "errors").is_dir()]
    assert {p.stem for p in (folder / "errors").glob("*.html")} == ran
    assert f"{len(ran)} of its {n_errors} errors (those some entry ran on)" in (folder / "index.html").read_text()
    first = min(ran, key=int)
    assert f"explained, {n_errors} in all" in (folder / "errors" / f"{first}.html").read_text()


def test_write_instances_from_a_real_store(tmp_path, errors):
    """Rows and arrays follow the store, in test-index order, limited to each entry's first n errors."""
    from bench.instances import write_instances
    from bench.leaderboard import MetricMeta
    from bench.store import Store

    store = Store(tmp_path / "store.sqlite")
    idx = errors.index[:4].tolist()
    store.add_records("k", [dict(test_index=t, success=i != 2, reason="budget" if i == 2 else "", queries=10 * i,
                                 grad_queries=0, seconds=0.5, explained=int(errors.true[i]), contrast=None,
                                 artifact=errors.x[i].numpy() * 0.5) for i, t in enumerate(idx)])
    store.add_scores("k", "l2", "1", idx, [0.1, 0.2, float("nan"), 0.4])
    metas = [MetricMeta("l2", False, True, "", "1"), MetricMeta("never_scored", True, False, "", "1")]
    paths = write_instances(store, [dict(entry_key="k", method="gs", n=3)], errors, tmp_path, "counterfactuals", metas)
    inst = pd.read_csv(paths[0], keep_default_na=False, na_values=[""])
    assert list(inst["test_index"]) == idx[:3] and list(inst["success"]) == [True, True, False]
    assert list(inst["pred"]) == errors.pred[:3].tolist() and inst["reason"].iloc[2] == "budget"
    assert inst["l2"].iloc[:2].tolist() == [0.1, 0.2] and np.isnan(inst["l2"].iloc[2])
    assert "never_scored" not in inst
    with np.load(paths[1]) as z:
        assert z["gs|"].dtype == np.float16 and z["gs|"].shape == (3, 28, 28)
        assert np.allclose(z["gs|"][1], errors.x[1, 0].numpy() * 0.5, atol=1e-3)
        assert list(z["errors_index"]) == errors.index.tolist() and z["errors"].shape == (len(errors), 28, 28)
    assert not list(tmp_path.glob(".*.tmp"))


def test_site_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("not a site")
    out = subprocess.run([sys.executable, "-m", "bench", "site", "--out", str(tmp_path)], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and "not written by `bench site`" in out.stderr
    assert (tmp_path / "mine.txt").exists()


def test_site_imports_no_torch(tmp_path):
    """`bench site` on a real board (mnist/cnn, its per-instance files and error manifest) imports no torch."""
    shutil.copytree(ROOT / "leaderboards" / "mnist" / "cnn", tmp_path / "lb" / "mnist" / "cnn",
                    ignore=shutil.ignore_patterns("meta"))
    code = (f"import sys; from bench.cli import main; main(['site', '--root', {str(tmp_path / 'lb')!r}, "
            f"'--out', {str(tmp_path / 's')!r}]); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("False"), out.stderr[-500:]


def test_png_round_trip_on_a_real_digit(mnist):
    import matplotlib.image as mpimg

    from bench.site.images import _diverging, png_bytes, signed_uri

    x = mnist.test.x[0, 0].numpy()
    img = (x * 255).round().astype(np.uint8)
    back = mpimg.imread(io.BytesIO(png_bytes(img)), format="png")
    assert np.array_equal((back * 255).round().astype(np.uint8), img)
    idx = (x * 32).round().astype(np.uint8)  # an indexed PNG decodes to its palette's colours
    back = mpimg.imread(io.BytesIO(png_bytes(idx, _diverging())), format="png")[..., :3]
    assert np.array_equal((back * 255).round().astype(np.uint8), _diverging()[idx])
    _, scale = signed_uri(x * 0.01)  # a tiny change is drawn on its own scale, printed
    assert scale == pytest.approx(0.01 * x.max(), rel=1e-6)


def test_overlay_grid_marks_not_run_and_failed_per_column_scale(errors):
    from bench.report.image_grid import image_grid

    x = [errors.x[i, 0].numpy() for i in range(3)]
    small, big = x[0] * 0.05, x[1] * 0.9
    fig = image_grid([("original", x)], [("Δ a", [small, None, "failed\nbudget"]), ("Δ b", [big, big, big])],
                     ["r0", "r1", "r2"], title="t")
    titles = [ax.get_title() for ax in fig.axes[:3 * 3]]
    assert any(f"scale ±{small.max():.2g}" in t for t in titles) and any(f"±{big.max():.2g}" in t for t in titles)
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert "not run" in texts and "failed\nbudget" in texts


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory, cache_dir):
    """A real tiny run (growing_spheres on 4 of 6 errors with a budget too small to flip them: "not run"
    and "failed (reason)" cells; five attribution methods x two modes), then its site."""
    tmp = tmp_path_factory.mktemp("site_run")
    out = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--preset", "tiny", "--out", str(tmp / "lb"), "--cache-dir", cache_dir,
         "--quiet", "--device", "cpu", "--set", f"store=\"{tmp / 'store.sqlite'}\"",
         "--set", "counterfactuals.subset={growing_spheres=4}",
         "--set", "counterfactuals.params.growing_spheres.max_queries=600",
         "--set", f"attributions.methods={ATTR_METHODS}", "--set", 'attributions.targets=["predicted","true"]'],
        capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    board = next((tmp / "lb").rglob("counterfactuals.csv")).parent
    stats = build_site(tmp / "lb", tmp / "site")
    print(f"tiny site: {stats}")
    board_id = board.relative_to(tmp / "lb").as_posix().replace("/", "-")
    return dict(board=board, site=tmp / "site", page=tmp / "site" / board_id / "index.html", stats=stats)


@pytest.mark.slow
def test_instance_export_matches_the_leaderboard(tiny_site):
    board = tiny_site["board"]
    inst = pd.read_csv(board / "counterfactuals_instances.csv", keep_default_na=False, na_values=[""])
    cf = pd.read_csv(board / "counterfactuals.csv")
    arrays = np.load(board / "counterfactuals_artifacts.npz")
    for _, r in cf.iterrows():
        rows = inst[inst["method"] == r["method"]]
        assert len(rows) == r["n"] and arrays[f"{r['method']}|"].shape == (r["n"], 28, 28)
        assert arrays[f"{r['method']}|"].dtype == np.float16
        assert rows["validity"].mean() == pytest.approx(r["validity"], abs=1e-6)
        valid = rows[rows["validity"] > 0.5]
        if len(valid):
            assert valid["l2"].mean() == pytest.approx(r["l2"], rel=1e-5)
    gs = inst[inst["method"] == "growing_spheres"]
    assert len(gs) == 4 and (~gs["success"]).any() and gs["reason"].str.contains("budget").any()
    assert list(arrays["errors_index"]) == sorted(inst["test_index"].unique())
    attr = pd.read_csv(board / "attributions_instances.csv", keep_default_na=False, na_values=[""])
    assert len(attr) == 5 * 2 * 6 and set(attr["mode"]) == {"predicted", "true"}
    pred = attr[attr["mode"] == "predicted"]
    assert (pred["explained"] == pred["pred"]).all()
    size = sum(p.stat().st_size for p in board.glob("*_instances.csv")) + sum(
        p.stat().st_size for p in board.glob("*_artifacts.npz"))
    assert size < 200_000  # 6 errors: a few kB per entry


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Selenium, with the browser console log readable (BENCH_CHROMIUM and
    BENCH_CHROMEDRIVER override the browser's and driver's paths)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("selenium is not installed: pip install -e '.[test]'")
    chromium = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = os.environ.get("BENCH_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (chromium, driver_path) if not os.path.exists(p)]
    if missing:
        skip_or_fail(f"no headless browser ({', '.join(missing)} missing): run `{APT}`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,860"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _open(driver, path: Path) -> None:
    driver.get(path.as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"console errors on {path.name}: {errors}"


def _order(driver, table_id: str) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [(tr.get_attribute("data-method"), tr.get_attribute("data-mode"))
            for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]


def _expected(df: pd.DataFrame, metric: str, ascending: bool) -> list[tuple[str, str]]:
    values = pd.to_numeric(df[metric], errors="coerce")
    order = df.assign(_v=values).sort_values("_v", ascending=ascending, na_position="last", kind="stable")
    return list(zip(order["method"], order["mode"]))


@pytest.mark.slow
def test_site_in_a_real_browser(browser, tiny_site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d, board, page = browser, tiny_site["board"], tiny_site["page"]
    _open(d, tiny_site["site"] / "index.html")
    d.execute_script("console.error('probe')")  # the console log is really read: a logged error shows up
    assert any("probe" in e["message"] for e in d.get_log("browser"))
    shots = [tmp_path / "index.png"]
    d.save_screenshot(str(shots[0]))
    d.find_element(By.CSS_SELECTOR, "ul.cards-list a").click()
    assert Path(d.current_url.replace("file://", "")).resolve() == page.resolve()
    _open(d, page)

    # numbers on the page equal the CSV's: the raw value, and the shown mean / CI formatted as in the Markdown
    for stem in ("counterfactuals", "attributions"):
        csv = pd.read_csv(board / f"{stem}.csv", dtype=str, keep_default_na=False)
        names = [th.get_attribute("data-name") for th in d.find_elements(By.CSS_SELECTOR, f"#{stem}-table thead th")]
        rows = d.find_elements(By.CSS_SELECTOR, f"#{stem}-table tbody tr")
        assert len(rows) == len(csv)
        for tr, (_, r) in zip(rows, csv.iterrows()):
            assert (tr.get_attribute("data-method"), tr.get_attribute("data-mode")) == (r["method"], r["mode"])
            cells = tr.find_elements(By.TAG_NAME, "td")
            for name, td in zip(names, cells):
                if name in ("method", "mode", "n"):
                    continue
                assert td.get_attribute("data-value") == r[name]
                assert td.find_element(By.CLASS_NAME, "v").text == fmt(float(r[name]) if r[name] else np.nan)
                assert _interval(r, name) in td.text
    # column tooltips carry the metric definition
    tip = d.find_element(By.CSS_SELECTOR, '#counterfactuals-table th[data-name="l2"] button').get_attribute("data-tip")
    assert "sqrt(sum((x_cf - x)^2))" in tip and "lower is better" in tip

    # sorting: a click sorts best-first as the CSV says, a second click reverses; the keyboard does the same
    attr = pd.read_csv(board / "attributions.csv", dtype=str, keep_default_na=False)
    assert len(attr) == 10
    button = d.find_element(By.CSS_SELECTOR, '#attributions-table th[data-name="deletion_auc"] button')
    button.click()
    assert _order(d, "attributions-table") == _expected(attr, "deletion_auc", ascending=True)
    button.click()
    assert _order(d, "attributions-table") == _expected(attr, "deletion_auc", ascending=False)
    key = d.find_element(By.CSS_SELECTOR, '#attributions-table th[data-name="insertion_auc"] button')
    key.send_keys(Keys.ENTER)
    assert _order(d, "attributions-table") == _expected(attr, "insertion_auc", ascending=False)  # ↑: best (high) first
    assert key.find_element(By.XPATH, "..").get_attribute("aria-sort") == "descending"
    d.find_element(By.CSS_SELECTOR, '#counterfactuals-table th[data-name="l2"] button').click()
    d.execute_script("window.scrollTo(0, 0)")
    shots.append(tmp_path / "board.png")
    d.save_screenshot(str(shots[1]))

    # drill-down: the gallery link of an error opens that error; not run and failed read differently
    inst = pd.read_csv(board / "counterfactuals_instances.csv", dtype=str, keep_default_na=False)
    gs = inst[inst["method"] == "growing_spheres"]
    failed_t = gs[gs["success"] == "False"]["test_index"].iloc[0]
    for t, status in ((failed_t, "failed"), (inst[inst["method"] == "gradient"]["test_index"].iloc[-1], "not run")):
        _open(d, page)
        d.find_element(By.CSS_SELECTOR, f'.gallery a[data-test-index="{t}"]').click()
        assert d.current_url.endswith(f"/errors/{t}.html")
        _open(d, Path(d.current_url.replace("file://", "")))
        row = inst[inst["test_index"] == t].iloc[0]
        assert (d.find_element(By.ID, "true").text, d.find_element(By.ID, "pred").text) == (row["true"], row["pred"])
        gs_rows = d.find_elements(By.CSS_SELECTOR, '#counterfactuals-instances tr[data-method="growing_spheres"]')
        if status == "failed":
            reason = gs[gs["test_index"] == t]["reason"].iloc[0]
            assert len(gs_rows) == 1 and f"failed ({reason})" in gs_rows[0].text
            assert d.find_elements(By.CSS_SELECTOR, ".card.failed img")  # its returned x_cf is still shown
            assert not d.find_elements(By.CSS_SELECTOR, "#counterfactuals ~ .cards .card.notrun")
        else:  # not run: no row, no image, one hatched card naming it and its subset
            assert not gs_rows and not d.find_elements(By.CSS_SELECTOR, ".card.failed")
            card = d.find_element(By.CSS_SELECTOR, ".card.notrun")
            assert "not run" in card.text and "growing_spheres (first 4)" in card.text
        grad = d.find_element(By.CSS_SELECTOR, '#counterfactuals-instances tr[data-method="gradient"]')
        ref = inst[(inst["test_index"] == t) & (inst["method"] == "gradient")].iloc[0]
        l2 = grad.find_elements(By.TAG_NAME, "td")[[th.get_attribute("data-name") for th in d.find_elements(
            By.CSS_SELECTOR, "#counterfactuals-instances thead th")].index("l2")]
        assert l2.get_attribute("data-value") == ref["l2"] and l2.text == fmt(float(ref["l2"]))
        assert "scale ±" in d.find_element(By.CSS_SELECTOR, ".card.ok").text
        tip = d.find_element(By.CSS_SELECTOR, '#counterfactuals-instances th[data-name="l2"] button')
        assert "sqrt(sum((x_cf - x)^2))" in tip.get_attribute("data-tip")  # filled from the board's tips.js
        assert len(d.find_elements(By.CSS_SELECTOR, "#attributions ~ .cards .card img")) >= 10
    for path in sorted((page.parent / "errors").glob("*.html")):  # every page of the board loads cleanly
        _open(d, path)
    shots.append(tmp_path / "error.png")
    d.save_screenshot(str(shots[2]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for s in shots:
        assert s.stat().st_size > 10_000
        shutil.copy2(s, ARTIFACTS / s.name)
