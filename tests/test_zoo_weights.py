"""The zoo's pinned checkpoints (`bench train --preset zoo_v2 --pin`, issue 25): each is the cell's own.

Real MNIST and the committed weights: a pinned cell's checkpoint is found by the cell's own config
(its cache key), loads into the cell's model, and scores on the test split exactly the accuracy
its metadata records (a cell under the 0.990 floor is pinned too: the comparison leaves it out).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from bench import checkpoints
from bench.config import make_config
from bench.contract.oracle import Oracle
from bench.models.train import checkpoint_relpath, load_or_train
from bench.study.cells import cells


def _pinned_cells() -> list:
    pins = checkpoints.pinned()
    grid = [c for c in cells(make_config("zoo_v2")) if c.rows == "errors"]
    return [c for c in grid if checkpoint_relpath(c.cfg)[0] in pins]


def test_pinned_zoo_cells_load_from_their_config_and_keep_their_accuracy(mnist, tmp_path):
    found = _pinned_cells()
    if not found:
        pytest.fail("no zoo_v2 checkpoint is pinned in leaderboards/weights/ (bench train --preset zoo_v2 --pin)")
    # three of them (a different label for each seed), each scored on the whole test split
    picked = [c for i, c in enumerate(found) if i % max(1, len(found) // 3) == 0][:3]
    for cell in picked:
        cfg = dataclasses.replace(cell.cfg, cache_dir=str(tmp_path))  # an empty cache: the pinned file only
        model, meta = load_or_train(cfg, mnist, torch.device("cpu"), progress=False)
        assert meta["source"] == "reference", cell.name
        recorded = json.loads(checkpoints.reference(meta["relpath"]).with_suffix(".json").read_text())
        acc = float((Oracle(model, "cpu").predict(mnist.test.x) == mnist.test.y).float().mean())
        assert acc == pytest.approx(recorded["test_accuracy"], abs=1e-4), cell.name
        assert recorded["model_params"] == cell.cfg.model_params  # (a cell under the floor stays: unranked)
