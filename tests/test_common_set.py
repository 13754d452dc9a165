"""The common image set (bench.data.common): one fixed list of MNIST test images every zoo model explains.

Real MNIST and the real pinned reference classifiers (leaderboards/weights/).
"""

from __future__ import annotations

import json

import pytest
import torch

from bench.contract.oracle import Oracle
from bench.data import common
from bench.error_set import collect_errors


def test_the_committed_set_is_what_its_recipe_gives_from_the_pinned_models(mnist):
    """Rebuilt from the four pinned MNIST classifiers, the set equals the committed file, entry for entry."""
    committed = common.load("mnist")
    assert common.build("mnist", mnist) == committed
    idx, hard, y = committed["test_index"], committed["hard"], mnist.test.y
    assert committed["n"] == len(idx) >= 200 and idx == sorted(set(idx))
    assert 0 < len(hard) <= common.N_HARD and set(hard) <= set(idx)
    assert min(committed["hard_wrong_counts"]) >= common.MIN_WRONG
    strat = sorted(set(idx) - set(hard))
    assert torch.bincount(y[strat], minlength=10).tolist() == [common.PER_CLASS] * 10
    # the first 20 non-hard images of class 3 in test order are in it
    threes = [i for i in (y == 3).nonzero().squeeze(1).tolist() if i not in hard][:common.PER_CLASS]
    assert set(threes) <= set(strat)


def test_common_rows_pair_errors_and_correct_ones_with_their_targets(mnist, cnn, errors):
    oracle = Oracle(cnn[0], "cpu")
    rows = collect_errors(oracle, mnist.test.x, mnist.test.y, cnn[1]["weights_sha256"], rows="common",
                          common=common.indices("mnist"))
    assert rows.rows == "common" and rows.index.tolist() == common.load("mnist")["test_index"]
    wrong = rows.pred != rows.true
    # this model's errors among the common images are exactly its errors set's rows there
    assert set(rows.index[wrong].tolist()) == set(errors.index.tolist()) & set(rows.index.tolist())
    assert 0 < int(wrong.sum()) < len(rows)
    runner_up = oracle.logits(rows.x).topk(2, dim=1).indices[:, 1]
    assert torch.equal(rows.target[wrong], rows.true[wrong])  # an error moves back to its true class
    assert torch.equal(rows.target[~wrong], runner_up[~wrong])  # a correct row to the runner-up
    assert rows.manifest_hash != errors.manifest_hash and "target" in rows.manifest()[0]
    assert f"{int(wrong.sum())} of them errors of this model" in rows.describe()


def test_rows_common_is_refused_at_the_door_for_a_dataset_without_a_set():
    from bench.config import make_config
    from bench.contract.params import ConfigError
    from bench.validate import validate

    with pytest.raises(ConfigError, match="rows='common': dataset 'fashion-mnist' has no common image set"):
        validate(make_config("default", dataset="fashion-mnist", rows="common"), extras=False)
    assert common.available() == ["mnist"]
    assert json.loads(common.path("mnist").read_text())["dataset"] == "mnist"


def test_a_shorter_test_split_is_refused_not_misindexed(mnist, cnn):
    with pytest.raises(ValueError, match="the common set names test image .* but this test split has 5000"):
        collect_errors(Oracle(cnn[0], "cpu"), mnist.test.x[:5000], mnist.test.y[:5000], cnn[1]["weights_sha256"],
                       rows="common", common=common.indices("mnist"))
