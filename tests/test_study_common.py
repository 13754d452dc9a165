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
    assert set(values.loc[~values["ranked"], "why"]) <= {"below the floor"}


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
    assert (tests["p_holm"] >= tests["p"] - 1e-12).all() and (tests["mdd"] > 0).all()
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
