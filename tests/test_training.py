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
