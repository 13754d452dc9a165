"""`python -m bench run --preset <set>` end to end on each controlled set, from its pinned weights.

The presets' own methods and metrics are cut to a few (and --limit 3) to keep this fast; the
published boards (leaderboards/<set>/cnn/) are the full runs. The random control is a case with a
known answer: a map of iid noise puts |mask| / 784 of its mass inside the mask (0.5 on
mnist-distractor, 16 / 784 on the decoy sets).
"""

from __future__ import annotations

import pandas as pd
import pytest

from bench.cli import main

FEW = ["--set", 'attributions.methods=["saliency", "random"]', "--set", 'counterfactuals.solvers=["gradient"]',
       "--set", 'attributions.metrics=["deletion_auc", "loc_pointing_game", "loc_relevance_mass_accuracy"]',
       "--set", 'counterfactuals.metrics=["validity", "l2", "cf_mask_share"]', "--limit", "3"]
SHARE = {"mnist-distractor": 0.5, "mnist-decoy": 16 / 784, "mnist-decoy-shortcut": 16 / 784}


def _board(tmp_path, *args) -> tuple:
    assert main(["-q", "run", *args, *FEW, "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "c"),
                 "--device", "cpu"]) == 0
    folder = next(p.parent for p in (tmp_path / "runs").rglob("attributions.csv"))
    return folder, pd.read_csv(folder / "attributions_instances.csv"), pd.read_csv(folder / "counterfactuals_instances.csv")


@pytest.mark.parametrize("name", sorted(SHARE))
def test_each_controlled_preset_runs_end_to_end_with_its_masks(tmp_path, name):
    folder, attr, cf = _board(tmp_path, "--preset", name)
    assert folder.parts[-3:-1] == (name, "cnn")
    noise = attr[attr.method == "random"].loc_relevance_mass_accuracy
    assert len(noise) == 3 and noise.between(SHARE[name] - 0.06, SHARE[name] + 0.06).all(), noise.tolist()
    sal = attr[attr.method == "saliency"]
    assert sal.loc_relevance_mass_accuracy.between(0, 1).all() and sal.loc_pointing_game.isin([0, 1]).all()
    assert len(cf) == 3 and cf.cf_mask_share.between(0, 1).all()
    assert "loc_relevance_mass_accuracy" in (folder / "attributions.md").read_text()


def test_correct_rows_board_of_a_controlled_set(tmp_path):
    folder, attr, cf = _board(tmp_path, "--preset", "mnist-distractor", "--set", 'rows="correct"')
    assert folder.parts[-4:-1] == ("mnist-distractor", "cnn", "correct")
    manifest = pd.read_csv(folder / "errors.csv")
    assert (manifest.true == manifest.pred).all() and (manifest.target != manifest.pred).all()
    assert (cf.explained.to_numpy() == manifest.target.to_numpy()).all()  # toward the runner-up class
    assert "correctly classified" in (folder / "attributions.md").read_text()
