"""Studies end to end on the real MNIST with real models: the local executor, Ray, and resuming.

One slice: the default CNN (2 seeds) and a small timm ResNet with squeeze-excitation (1 seed),
each trained for a few steps (cached under BENCH_CACHE, so once per machine), the gradient
solver, saliency and the random control on the first 4 errors of each model. The local and
the Ray study must write the same tables in every non-timing cell; a study killed half-way
and run again must write the same tables as one that never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from tests.conftest import skip_or_fail

pytestmark = pytest.mark.slow

SLICE = """
extends = "tiny"
limit = 4
n_bootstrap = 50
n_figure = 1

[study]
name = "slice"
seeds = [0, 1]

[[study.models]]
label = "cnn"
model = "cnn"
train = { max_steps = 150 }

[[study.models]]
label = "resnet-se"
model = "timm"
model_params = { arch = "resnet18", attn_layer = "se", layers = [1, 1, 1, 1], channels = [8, 16, 32, 64] }
train = { max_steps = 100, lr = 1e-2 }
seeds = [0]

[counterfactuals]
solvers = ["gradient"]
metrics = ["validity", "l2", "queries", "grad_queries", "seconds"]

[attributions]
methods = ["saliency", "random"]
"""
TIMING = ("seconds", "rows_per_s")  # machine- and moment-dependent: never compared


@pytest.fixture(scope="module")
def preset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "slice.toml"
    path.write_text(SLICE)
    return path


def _argv(preset: Path, tmp: Path, name: str, cache_dir: str) -> list[str]:
    return ["-q", "run", "--preset", str(preset), "--cache-dir", cache_dir, "--store", str(tmp / f"{name}.sqlite"),
            "--out", str(tmp / name), "--device", "cpu"]


def _study(tmp: Path, name: str) -> Path:
    [folder] = list((tmp / name / "mnist" / "slice").iterdir())  # <out>/<dataset>/<study>/<UTC time>/
    return folder


@pytest.fixture(scope="module")
def local(preset, cache_dir):
    tmp = preset.parent
    assert main(_argv(preset, tmp, "local", cache_dir)) == 0
    return _study(tmp, "local")


@pytest.fixture(scope="module")
def on_ray(preset, cache_dir, local):
    try:
        import ray
    except ImportError:
        skip_or_fail('ray is not installed: pip install -e ".[ray]"')
    tmp = preset.parent
    ray.init(num_cpus=2, include_dashboard=False)  # a local cluster, started here; the study uses it
    try:
        assert main(_argv(preset, tmp, "ray", cache_dir) + ["--executor", "ray"]) == 0
    finally:
        ray.shutdown()
    return _study(tmp, "ray")


def _frame(path: Path) -> pd.DataFrame:
    """A CSV without its timing cells: columns, and rows of the meta tables, about seconds or rows/s."""
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    df = df[[c for c in df.columns if not any(t in c for t in TIMING)]]
    for col in ("metric", df.columns[0]):
        if col in df.columns and df[col].dtype == object:
            df = df[~df[col].astype(str).str.contains("|".join(TIMING))]
    return df.reset_index(drop=True)


def assert_same_tables(a: Path, b: Path) -> int:
    """Every CSV under study folder `a` equals its twin under `b`, column by column; returns how many."""
    files = sorted(p.relative_to(a) for p in a.rglob("*.csv"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.csv"))
    for rel in files:
        x, y = _frame(a / rel), _frame(b / rel)
        assert list(x.columns) == list(y.columns), rel
        for col in x.columns:
            assert x[col].equals(y[col]), f"{rel}: column {col} differs:\n{x[col].tolist()}\n{y[col].tolist()}"
    return len(files)


def test_local_study_writes_cells_table_figure_and_meta(local):
    table = pd.read_csv(local / "study.csv", keep_default_na=False, na_values=[""])
    assert list(zip(table["label"], table["seed"].astype(str))) == [
        ("cnn", "0"), ("cnn", "1"), ("cnn", "all"), ("resnet-se", "0"), ("resnet-se", "all")]
    cnn = table.set_index(["label", table["seed"].astype(str)]).loc["cnn"]
    assert cnn.loc["all", "n_seeds"] == 2 and cnn.loc["0", "n_params"] == 225034
    for col in ("gradient.validity", "gradient.l2", "saliency.deletion_auc", "random.insertion_auc"):
        # the mean of the seeds (study.csv keeps 6 significant digits of both)
        assert cnn.loc["all", col] == pytest.approx(cnn.loc[["0", "1"], col].mean(), rel=1e-5)
        if cnn.loc["0", col] == cnn.loc["1", col]:  # equal seed values: no interval, never a zero-width one
            assert np.isnan(cnn.loc["all", f"{col}_lo"]) and np.isnan(cnn.loc["all", f"{col}_hi"])
        else:
            assert cnn.loc["all", f"{col}_lo"] < cnn.loc["all", col] < cnn.loc["all", f"{col}_hi"]
    assert (table["n_errors"] == 4).all() and table["test_accuracy"].between(0.8, 1).all()
    assert (table["rows_per_s"] > 0).all() and (table.loc[table.seed != "all", "train_seconds"] > 0).all()
    md = (local / "study.md").read_text()
    assert "**What it cannot show.**" in md and "Only 2 seeds per model" in md and "NOT FOR PUBLICATION" in md
    alls = table[table.seed == "all"].set_index("label")
    best = alls["test_accuracy"].idxmax()  # the headline names the label the table says is most accurate
    assert f"- `test_accuracy` ↑: best **{best}**" in md
    low = alls["gradient.l2"].idxmin()  # and, for a lower-is-better score, the lowest
    assert f"- `gradient.l2` ↓: best **{low}**" in md
    for name in ("study_quality.png", "study.json", "meta/cnn/meta.md", "meta/resnet-se/meta_attributions.csv"):
        assert (local / name).is_file(), name
    for cell in ("cnn-seed0", "cnn-seed1", "resnet-se-seed0"):
        for name in ("counterfactuals.csv", "attributions.csv", "errors.csv", "cell.json"):
            assert (local / cell / name).is_file(), (cell, name)
    board = (local / "cnn-seed1" / "counterfactuals.md").read_text()
    assert 'only = ["mnist/cnn-seed1"]' in board  # the cell's own reproduce command names the cell


def test_ray_study_equals_local_in_every_non_timing_cell(local, on_ray):
    assert assert_same_tables(local, on_ray) >= 20
    units = json.loads((on_ray / "study.json").read_text())["units"]
    assert {u["where"] for u in units if u["kind"] == "explain"} == {"ray"}
    assert json.loads((on_ray / "study.json").read_text())["failed"] == []


def test_a_killed_study_resumes_to_the_same_tables(preset, cache_dir, local):
    tmp = preset.parent
    store = tmp / "resume.sqlite"
    argv = _argv(preset, tmp, "resume", cache_dir)
    proc = subprocess.Popen([sys.executable, "-m", "bench", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "BENCH_CACHE": cache_dir})
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if _count(store, "records") > 0:
            proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the study finished before any record was seen"
    with sqlite3.connect(store) as con:  # and a unit that produced but was not scored yet
        key = con.execute("SELECT entry_key FROM records LIMIT 1").fetchone()[0]
        con.execute("DELETE FROM scores WHERE entry_key=?", (key,))
    assert main(argv) == 0
    [folder] = [p for p in (tmp / "resume" / "mnist" / "slice").iterdir() if (p / "study.csv").exists()]
    assert assert_same_tables(local, folder) >= 20
    done_now = sum(sum(json.loads((folder / c / "cell.json").read_text())["solved_now"].values())
                   for c in ("cnn-seed0", "cnn-seed1", "resnet-se-seed0"))
    assert 0 < done_now < 3 * 3 * 4  # it resumed: records from before the kill were kept


def test_study_cells_use_a_plain_runs_store_keys(preset, cache_dir, local, tmp_path):
    """A cell's entries are keyed as `bench run` keys them: its store serves plain runs and back."""
    from dataclasses import replace

    from bench.cell import open_cell
    from bench.config import make_config
    from bench.data import load_dataset
    from bench.pipeline import entries
    from bench.store import Store
    from bench.study.cells import cells
    from bench.tasks.for_run import task_of

    cell = cells(make_config(str(preset), cache_dir=cache_dir, device="cpu"))[1]
    cfg = replace(cell.cfg, study=None, store=str(tmp_path / "plain.sqlite"), out=str(tmp_path))
    store = Store(cfg.store_path).acquire()
    try:
        ctx = open_cell(cfg, load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir), store, tmp_path)
        keys = {e.key for e in entries(ctx, task_of(ctx, "counterfactual"), "gradient")}
    finally:
        store.release()
    with sqlite3.connect(preset.parent / "local.sqlite") as con:
        assert keys <= {r[0] for r in con.execute("SELECT entry_key FROM records")}


def test_a_plain_run_is_a_one_cell_study_through_the_same_units(preset, cache_dir, local, tmp_path, monkeypatch):
    """`bench run` of a cell's config (no study) goes through the study's units and writes the cell's tables.

    The plain run gets a fresh store (it recomputes everything) and the study's one torch thread
    (study.threads), so every non-timing cell must be equal to the study cell's.
    """
    from dataclasses import replace

    import torch

    from bench.config import make_config
    from bench.runner import run
    from bench.study import units
    from bench.study.cells import cells

    calls = []
    explain = units.explain
    monkeypatch.setattr(units, "explain", lambda ctx, kind, name, *a, **k: calls.append((kind, name)) or
                        explain(ctx, kind, name, *a, **k))
    cell = next(c for c in cells(make_config(str(preset), cache_dir=cache_dir, device="cpu")) if c.name == "cnn-seed1")
    cfg = replace(cell.cfg, preset="tiny", study=None, store=str(tmp_path / "plain.sqlite"), out=str(tmp_path / "plain"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = run(cfg, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert sorted(calls) == [("attribution", "random"), ("attribution", "saliency"), ("counterfactual", "gradient")]
    assert assert_same_tables(local / cell.name, Path(summary["folder"])) >= 6


def _count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as con:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_across_seeds_interval_is_a_t_interval_over_the_seed_means(local):
    """The across-seeds interval is Student t over the seed-level values (scipy), not their range."""
    from scipy import stats

    table = pd.read_csv(local / "study.csv", keep_default_na=False, na_values=[""])
    seeds = table[(table.label == "cnn") & (table.seed != "all")]["saliency.deletion_auc"].to_numpy()
    lo, hi = stats.t.interval(0.95, len(seeds) - 1, loc=seeds.mean(), scale=stats.sem(seeds))
    row = table[(table.label == "cnn") & (table.seed == "all")].iloc[0]
    assert row["ci_method"] == f"t over {len(seeds)} seed means"
    assert np.allclose([row["saliency.deletion_auc_lo"], row["saliency.deletion_auc_hi"]], [lo, hi], rtol=1e-4)
    assert row["saliency.deletion_auc_lo"] < seeds.min() and row["saliency.deletion_auc_hi"] > seeds.max()
