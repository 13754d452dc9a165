"""Which rows a board explains: the errors (every board) or a stratified sample of correct predictions.

Real MNIST, the real default CNN (its shipped reference weights), and a controlled set's masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from bench.contract.oracle import Oracle
from bench.error_set import collect_errors, correct_sample

BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "mnist" / "cnn"


def test_the_error_rows_and_their_hash_are_unchanged(errors):
    """The published MNIST x cnn board's manifest hash is what collect_errors computes today."""
    published = json.loads((BOARD / "attributions.json").read_text())["errors"]["manifest_sha256"]
    assert errors.rows == "errors" and errors.manifest_hash == published
    assert torch.equal(errors.target, errors.true) and errors.mask is None
    assert "target" not in errors.manifest()[0]


def test_correct_rows_are_a_stratified_sample_moving_to_the_runner_up(mnist, cnn, errors):
    oracle = Oracle(cnn[0], "cpu")
    rows = collect_errors(oracle, mnist.test.x, mnist.test.y, cnn[1]["weights_sha256"], rows="correct", n_correct=50)
    assert rows.rows == "correct" and len(rows) == 50
    assert torch.equal(rows.pred, rows.true)  # every row is a correct prediction
    assert torch.bincount(rows.true, minlength=10).tolist() == [5] * 10  # 5 per class
    assert bool((rows.index.diff() > 0).all())  # in test order
    # the first 5 correct images of class 7 in test order
    right7 = ((oracle.predict(mnist.test.x) == mnist.test.y) & (mnist.test.y == 7)).nonzero().squeeze(1)[:5]
    assert set(right7.tolist()) <= set(rows.index.tolist())
    logits = oracle.logits(rows.x)
    runner_up = logits.topk(2, dim=1).indices[:, 1]
    assert torch.equal(rows.target, runner_up) and bool((rows.target != rows.pred).all())
    assert rows.manifest_hash != errors.manifest_hash and rows.manifest()[0]["target"] == int(runner_up[0])
    assert "correctly classified" in rows.describe()


def test_correct_sample_takes_what_a_small_class_has():
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 0, 2])  # class 0: 2 correct, class 1: 1, class 2: 1
    assert correct_sample(pred, y, 6).tolist() == [0, 1, 3, 5]


def test_a_controlled_set_carries_each_rows_mask(mnist, cnn):
    from bench.data import load_dataset

    data = load_dataset("mnist-distractor")
    # the MNIST model misreads many distractor images: an error set with masks, on real data
    oracle = Oracle(cnn[0], "cpu")
    errs = collect_errors(oracle, data.test.x[:500], data.test.y[:500], cnn[1]["weights_sha256"],
                          mask=data.test.mask[:500])
    assert len(errs) > 10 and errs.mask.dtype == torch.bool and errs.mask.shape == errs.x.shape
    assert torch.equal(errs.mask, data.test.mask[errs.index])
    assert bool(errs.mask[:, :, :, :14].all()) and not bool(errs.mask[:, :, :, 14:].any())
