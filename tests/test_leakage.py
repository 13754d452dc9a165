"""ROAD's leakage checks (metrics/leakage.py) on cases whose answer is known, on real MNIST images."""

from __future__ import annotations

import torch

from metrics.leakage import class_from_mask, detectability, identity, masks_at


def _random_masks(n, p=0.5, seed=0):
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed)) < p


def test_a_constant_half_is_detected_and_an_unchanged_image_is_at_chance(mnist):
    x = mnist.test.x[:1600]
    removed = _random_masks(len(x))
    half = detectability(x, removed, lambda x, m, g: torch.where(m[:, None], torch.full_like(x, 0.5), x))
    assert half["auc"] > 0.99 and half["accuracy"] > 0.97 and abs(half["chance_accuracy"] - 0.5) < 0.01
    none = detectability(x[:800], removed[:800], identity)
    assert abs(none["auc"] - 0.5) < 0.02 and abs(none["accuracy"] - none["chance_accuracy"]) < 0.02


def test_class_from_mask_reads_a_class_coded_mask_and_not_a_random_one():
    n = 600
    y = torch.arange(n) % 10
    coded = torch.zeros(n, 28, 28, dtype=torch.bool)
    for c in range(10):
        coded[y == c, c * 2:c * 2 + 2, :] = True  # class c removes rows 2c, 2c+1
    assert class_from_mask(coded, y)["accuracy"] == 1.0
    rand = class_from_mask(_random_masks(n), y)
    assert rand["accuracy"] < rand["chance_accuracy"] + 0.1


def test_masks_at_removes_the_first_fractions_of_the_order():
    rank = torch.arange(784).view(1, 28, 28).repeat(5, 1, 1)
    m = masks_at(rank, (0.1, 0.5))
    assert m.flatten(1).sum(1).tolist() == [78, 392, 78, 392, 78] and bool(m[0].flatten()[:78].all())


def test_the_board_leakage_table_is_built_once_cached_and_said_under_the_table(oracle, mnist, cnn, tmp_path):
    """On the real CNN: mean-filling leaks far more than zeros (MNIST's own background value), the
    table is cached by the weights' hash, and the board's note names every operator."""
    from bench.contract.metrics import MetricContext
    from bench.tasks.quality import leakage_note
    from metrics.leakage import BOARD_OPERATORS, board_leakage

    ctx = MetricContext(oracle=oracle, data=mnist, cache_dir=str(tmp_path), model_sha256=cnn[1]["weights_sha256"])
    table = board_leakage(ctx, n=200, epochs=2)
    rows = {r["operator"]: r for r in table["rows"]}
    assert list(rows) == list(BOARD_OPERATORS) and table["images"] == 200
    assert rows["mean"]["detector_auc"] > rows["zeros"]["detector_auc"] + 0.2
    assert table["least_leaking"] == min((op for op in rows if op != "none"), key=lambda op: rows[op]["detector_auc"])
    [cached] = list(tmp_path.glob("leakage/mnist/*.json"))
    assert board_leakage(ctx, n=200, epochs=2) == table  # read back, not retrained
    note = " ".join(leakage_note(table))
    assert all(f"{op} {rows[op]['detector_auc']:.3f}" in note for op in ("zeros", "blur", "mean", "road"))
    assert f"Least leaking: {table['least_leaking']}" in note and leakage_note({}) == []
