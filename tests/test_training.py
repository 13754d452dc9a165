"""Training is reproducible: the same config gives the same weights, whoever calls it."""

import dataclasses

import torch

from bench.config import make_config
from bench.data.splits import Dataset, Split
from bench.models.train import load_or_train


def _small(mnist) -> Dataset:
    """The first 2,000 real training images (one epoch in a couple of seconds)."""
    part = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
    return dataclasses.replace(mnist, train=part(mnist.train, 2000), val=part(mnist.val, 500),
                               test=part(mnist.test, 500))


def test_same_config_same_weights_whatever_the_callers_rng(mnist, tmp_path):
    data = _small(mnist)
    hashes = []
    for i, burn in enumerate((0, 1000)):  # callers that consumed different amounts of the global RNG
        torch.manual_seed(123)
        torch.rand(burn)
        cfg = make_config("default", cache_dir=str(tmp_path / str(i)), device="cpu", overrides=["train.epochs=1"])
        _, meta = load_or_train(cfg, data, torch.device("cpu"), progress=False)
        assert meta["cached"] is False and meta["test_accuracy"] > 0.5
        hashes.append(meta["weights_sha256"])
    assert hashes[0] == hashes[1]
    other = make_config("default", cache_dir=str(tmp_path / "s1"), device="cpu",
                        overrides=["train.epochs=1", "seed=1"])
    assert load_or_train(other, data, torch.device("cpu"), progress=False)[1]["weights_sha256"] != hashes[0]


def test_early_stopping_stops_on_val_and_keeps_the_best_weights(mnist, tmp_path):
    """val_target: stops at the first val pass at or above it, long before the epoch ends; the val
    history, steps and the best pass are in the metadata, and the kept weights score the best val."""
    from bench.models.train import accuracy

    data = _small(mnist)  # 16 steps per epoch of 128
    cfg = make_config("default", cache_dir=str(tmp_path), device="cpu",
                      overrides=["train.epochs=3", "train.eval_every=4", "train.val_target=0.5"])
    model, meta = load_or_train(cfg, data, torch.device("cpu"), progress=False)
    assert meta["stop"] == "val_target" and meta["steps"] < 48 and meta["steps"] % 4 == 0
    assert meta["epochs"] == round(meta["steps"] / 16, 3) and meta["best_step"] == meta["steps"]
    assert [s for s, _ in meta["val_history"]] == list(range(4, meta["steps"] + 1, 4))
    assert meta["val_history"][-1][1] >= 0.5 > max(a for _, a in meta["val_history"][:-1])
    assert meta["val_accuracy"] == accuracy(model, data.val.x, data.val.y, "cpu") == meta["val_history"][-1][1]


def test_val_passes_leave_training_as_it_was(mnist, tmp_path):
    """Scoring val every few steps without stopping gives the weights of a run that never scores it
    (no RNG drawn, BatchNorm statistics untouched); the default config's cache keys are unchanged."""
    from bench.models.train import checkpoint_relpath

    data = _small(mnist)
    data = dataclasses.replace(data, train=Split(data.train.x[:1000], data.train.y[:1000]))  # 8 steps
    hashes = []
    for i, extra in enumerate(([], ["train.eval_every=3"])):
        cfg = make_config("default", cache_dir=str(tmp_path / str(i)), device="cpu",
                          overrides=["model=resnet_cbam", "model_params={channels=[4,8,8,8]}", "train.epochs=1", *extra])
        _, meta = load_or_train(cfg, data, torch.device("cpu"), progress=False)
        hashes.append(meta["weights_sha256"])
    assert meta["stop"] == "epochs" and [s for s, _ in meta["val_history"]] == [3, 6, 8]  # and the last step
    assert hashes[0] == hashes[1]
    shipped = {p.name for p in (checkpoints_dir() / "models" / "mnist").iterdir()}
    for preset in ("default", "mnist_resnet_cbam"):  # published weights are found by these keys
        assert checkpoint_relpath(make_config(preset))[0].rsplit("/", 1)[1] in shipped


def checkpoints_dir():
    from bench.checkpoints import reference_dir

    return reference_dir()
