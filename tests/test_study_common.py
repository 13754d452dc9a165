"""A study on the common image set end to end: two models x two seeds, each cell's own errors and the
common images, then the paired comparison (bench.study.paired) recomputed from the cells' instances.

Real MNIST, real CNNs trained for a few hundred steps (cached under BENCH_CACHE), real methods.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import board
from bench.cli import main
from bench.data import common
from bench.study import paired

pytestmark = pytest.mark.slow

GRID = """
extends = "tiny"
limit = 40
n_bootstrap = 50
n_figure = 1

[study]
name = "pairs"
seeds = [0, 1]
rows = ["errors", "common"]

[[study.models]]
label = "cnn-short"
model = "cnn"
train = { max_steps = 150 }

[[study.models]]
label = "cnn-long"
model = "cnn"
train = { max_steps = 400 }

[counterfactuals]
solvers = ["gradient"]
metrics = ["validity", "l2", "queries", "grad_queries", "seconds"]

[attributions]
methods = ["saliency", "gradcam", "random"]
metrics = ["del_morf_zeros", "insertion_auc"]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory, cache_dir) -> Path:
    tmp = tmp_path_factory.mktemp("pairs")
    (tmp / "pairs.toml").write_text(GRID)
    assert main(["-q", "run", "--preset", str(tmp / "pairs.toml"), "--cache-dir", cache_dir, "--store",
                 str(tmp / "s.sqlite"), "--out", str(tmp / "out"), "--device", "cpu"]) == 0
    [folder] = list((tmp / "out" / "mnist" / "pairs").iterdir())
    return folder


def test_each_model_explains_its_errors_and_the_same_common_images(study):
    first40 = common.load("mnist")["test_index"][:40]
    for label in ("cnn-short", "cnn-long"):
        for seed in (0, 1):
            own = pd.read_csv(study / f"{label}-seed{seed}" / "errors.csv")
            rows = pd.read_csv(study / f"{label}-seed{seed}" / "common" / "errors.csv")
            assert rows["test_index"].tolist() == first40  # the same images for every cell
            assert (own["true"] != own["pred"]).all() and "target" in rows
            wrong = rows["true"] != rows["pred"]
            assert (rows.loc[wrong, "target"] == rows.loc[wrong, "true"]).all()
            assert (rows.loc[~wrong, "target"] != rows.loc[~wrong, "pred"]).all()  # the runner-up
            cell = json.loads((study / f"{label}-seed{seed}" / "common" / "cell.json").read_text())
            assert cell["rows"] == "common" and cell["n_rows"] == 40 and cell["n_wrong_rows"] == int(wrong.sum())
            steps = {"cnn-short": 150, "cnn-long": 400}[label]
            assert cell.get("steps", steps) == steps  # (a checkpoint cached before training recorded steps has none)
    table = pd.read_csv(study / "study.csv", keep_default_na=False, na_values=[""])
    assert set(zip(table["label"], table["rows"])) == {(lab, r) for lab in ("cnn-short", "cnn-long")
                                                       for r in ("errors", "common")}
    assert (study / "meta" / "cnn-long-common" / "meta.md").is_file() and (study / "meta" / "cnn-long" / "meta.md").is_file()


def test_the_floor_leaves_out_cells_and_study_md_says_so(study):
    md = (study / "study.md").read_text()
    acc = {json.loads(p.read_text())["test_accuracy"] for p in study.glob("*/common/cell.json")}
    below = sum(a < 0.99 for a in acc)
    assert "## Headline on the common image set" in md and "## The models, laid out as the seed report's Table 4" in md
    assert f"Accuracy floor 0.990: {below} of 4 cells below it" in md
    values = pd.read_csv(study / "comparison.csv", keep_default_na=False, na_values=[""])
    assert set(values.loc[~values["ranked"], "why"]) <= {"below the floor", "1 seed at the floor (2 needed)"}


def test_the_paired_comparison_is_what_the_instances_say(study):
    folders = sorted(study.glob("*/common"))
    cells, scores = paired.load(folders, floor=None)  # no floor: both CPU-minute models are ranked
    directions = board.directions([board.read_json(board.ATTRIBUTIONS.json(f)) for f in folders]
                                  + [board.read_json(board.COUNTERFACTUALS.json(f)) for f in folders])
    values, tests = paired.compare(cells, scores, directions, n_boot=300)
    inst = {f.parent.name: pd.read_csv(f / "attributions_instances.csv") for f in folders}
    # saliency.del_morf_zeros of cnn-long: the mean over its 2 seeds x 40 images, recomputed from the CSVs
    long = pd.concat([d[d["method"] == "saliency"] for k, d in inst.items() if k.startswith("cnn-long")])
    row = values[(values["score"] == "saliency.del_morf_zeros") & (values["label"] == "cnn-long")].iloc[0]
    assert row["mean"] == pytest.approx(long["del_morf_zeros"].mean()) and row["lo"] < row["mean"] < row["hi"]
    assert row["n_seeds"] == 2 and row["n_images"] == 40 and row["ci"] == "hierarchical"
    # the random-control difference is per image: the same image's random score subtracted
    vs = values[(values["score"] == "saliency.del_morf_zeros_vs_random") & (values["label"] == "cnn-long")].iloc[0]
    rand = pd.concat([d[d["method"] == "random"] for k, d in inst.items() if k.startswith("cnn-long")])
    assert vs["mean"] == pytest.approx(long["del_morf_zeros"].mean() - rand["del_morf_zeros"].mean())
    # one comparison per score (two labels: the runner-up only), one Holm family
    assert len(tests) == values["score"].nunique()
    assert (tests["p_holm"] >= tests["p"] - 1e-12).all() and (tests["mdd"].dropna() > 0).all()
    # an MDD is left out only where the difference has no spread at all (both models constant on it)
    assert tests["mdd"].isna().sum() == ((tests["lo"] == tests["hi"]) & (tests["diff"] == 0)).sum()
    t = tests[tests["score"] == "saliency.del_morf_zeros"].iloc[0]
    means = values[values["score"] == "saliency.del_morf_zeros"].set_index("label")["mean"]
    assert t["diff"] == pytest.approx(means[t["best"]] - means[t["other"]])
    assert t["best"] == means.idxmin()  # lower is better for deletion
    assert np.isfinite(t["lo"]) and t["lo"] <= t["diff"] <= t["hi"]


def test_train_pins_a_studys_checkpoints_once_each_for_a_later_sitting(tmp_path, cache_dir, monkeypatch, capsys):
    """`bench train --pin` on a study: one checkpoint per (model, seed) whatever the row kinds, pinned at once;
    the next sitting loads them as reference weights."""
    (tmp_path / "pairs.toml").write_text(GRID)
    ref = tmp_path / "weights"
    monkeypatch.setenv("BENCH_REFERENCE_DIR", str(ref))
    argv = ["-q", "train", "--preset", str(tmp_path / "pairs.toml"), "--cache-dir", cache_dir, "--device", "cpu"]
    assert main(argv + ["--pin"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["cell"] for x in lines] == ["mnist/cnn-short-seed0", "mnist/cnn-short-seed1",
                                          "mnist/cnn-long-seed0", "mnist/cnn-long-seed1"]
    assert all(x["pinned"] for x in lines)
    sums = (ref / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 4 and all((ref / s.split()[1]).is_file() for s in sums)
    assert main(argv) == 0  # a later sitting: every checkpoint comes from the pinned weights
    assert {json.loads(x)["source"] for x in capsys.readouterr().out.splitlines()} == {"reference"}
    assert main(["-q", "train", "--preset", "tiny", "--pin"]) == 2  # a plain run pins with run --publish


def test_train_pins_float16_checkpoints_that_score_what_their_sidecar_says(tmp_path, cache_dir, monkeypatch,
                                                                          capsys, mnist):
    """study.pin_dtype = "float16": every float tensor stored in half precision (integer buffers kept),
    about half the bytes of the float32 pin, and the sidecar's test_accuracy is the rounded weights' own
    (the trained float32 one kept beside it); the pinned file loads back as reference weights."""
    import dataclasses

    import torch

    from bench import checkpoints
    from bench.config import make_config
    from bench.contract.oracle import Oracle
    from bench.models.train import load_or_train
    from bench.study.cells import cells

    (tmp_path / "pairs.toml").write_text(GRID)
    argv = ["-q", "train", "--preset", str(tmp_path / "pairs.toml"), "--cache-dir", cache_dir, "--device", "cpu",
            "--set", 'study.only=["cnn-long-seed1"]', "--pin"]
    monkeypatch.setenv("BENCH_REFERENCE_DIR", str(tmp_path / "w32"))
    assert main(argv) == 0
    monkeypatch.setenv("BENCH_REFERENCE_DIR", str(tmp_path / "w16"))
    assert main(argv + ["--set", 'study.pin_dtype="float16"']) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    rel = out[1]["relpath"]
    full, half = tmp_path / "w32" / rel, tmp_path / "w16" / rel
    state = torch.load(half, weights_only=True)
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.6
    side = json.loads(half.with_suffix(".json").read_text())
    assert side["stored_dtype"] == "float16" and side["test_accuracy_float32"] == out[0]["test_accuracy"]
    assert out[1]["pinned_test_accuracy"] == side["test_accuracy"]
    cell = next(c for c in cells(make_config(str(tmp_path / "pairs.toml"))) if c.name == "cnn-long-seed1")
    model, meta = load_or_train(dataclasses.replace(cell.cfg, cache_dir=str(tmp_path / "empty")), mnist,
                                torch.device("cpu"), progress=False)
    assert meta["source"] == "reference" and next(model.parameters()).dtype == torch.float32
    acc = float((Oracle(model, "cpu").predict(mnist.test.x) == mnist.test.y).float().mean())
    assert acc == pytest.approx(side["test_accuracy"], abs=1e-6)
    assert abs(side["test_accuracy"] - side["test_accuracy_float32"]) < 2e-3  # rounding moves a few images at most


def test_the_study_page_shows_the_paired_headline_its_tests_and_table4(study, tmp_path):
    """The site's study page (bench/site/comparison.py) carries what study.md and the comparison CSVs say."""
    import re
    import shutil

    from bench.site.study import study_page

    folder = shutil.copytree(study, tmp_path / "pairs")
    folders = sorted(folder.glob("*/common"))
    cells, scores = paired.load(folders, floor=None)  # ranked without the floor, so there are tests to show
    directions = board.directions([board.read_json(board.ATTRIBUTIONS.json(f)) for f in folders])
    _, tests = paired.compare(cells, scores, directions, n_boot=100)
    tests.to_csv(folder / "comparison_tests.csv", index=False)
    html = study_page(folder, "mnist/pairs", {}, 2)
    assert '<h2 id="common">Headline on the common image set</h2>' in html
    table = html[html.index('id="comparison-tests"'):]
    assert table[:table.index("</table>")].count("<tr") == len(tests) + 1  # one row per comparison, and the header
    values = pd.read_csv(folder / "comparison.csv")
    assert html[html.index('id="comparison-values"'):].count("<tr") >= len(values) + 1
    t4 = html[html.index('id="table4"'):]
    t4 = t4[:t4.index("</table>")]
    md = (folder / "study.md").read_text().split("## The models, laid out as the seed report's Table 4")[1]
    md_rows = [ln for ln in md.split("\n## ")[0].splitlines() if ln.startswith("|")][2:]
    assert len(md_rows) == 2 and t4.count("<tr><td>") == 2  # one row per model label, as study.md has them
    assert re.findall(r"<tr><td>([^<]+)</td>", t4) == [r.strip("|").split("|")[0].strip() for r in md_rows]
