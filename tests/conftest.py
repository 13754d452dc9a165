"""Shared fixtures: the real MNIST, the real default CNN (trained once, cached), its errors.

The cache lives in $BENCH_CACHE or ~/.cache/bench, so the 3-epoch training (~30 s on two
cores) happens once per machine; every test then works on the real model and real errors.
"""

from __future__ import annotations

import os

import pytest
import torch

from bench.config import RunConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def skip_or_fail(reason: str) -> None:
    """Skip a test whose optional dependency is missing, naming the install command.

    CI sets BENCH_REQUIRE_ALL=1, which turns such a skip into a failure: CI runs every real path.
    """
    if os.environ.get("BENCH_REQUIRE_ALL") == "1":
        pytest.fail(f"{reason} (BENCH_REQUIRE_ALL=1 makes this skip a failure)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cache_dir() -> str:
    return os.environ.get("BENCH_CACHE", "~/.cache/bench")


@pytest.fixture(scope="session")
def mnist():
    from bench.data import load_dataset

    return load_dataset("mnist")


@pytest.fixture(scope="session")
def cnn(mnist, cache_dir):
    """The default CNN of the default preset (trained on first use, then cached)."""
    from bench.config import make_config
    from bench.models.train import load_or_train

    cfg = make_config("default", cache_dir=cache_dir, device="cpu")
    model, meta = load_or_train(cfg, mnist, torch.device("cpu"), progress=False)
    return model, meta


@pytest.fixture()
def oracle(cnn):
    from bench.contract.oracle import Oracle

    return Oracle(cnn[0], "cpu")


@pytest.fixture(scope="session")
def errors(mnist, cnn):
    from bench.contract.oracle import Oracle
    from bench.error_set import collect_errors

    return collect_errors(Oracle(cnn[0], "cpu"), mnist.test.x, mnist.test.y, cnn[1]["weights_sha256"])


@pytest.fixture()
def default_config() -> RunConfig:
    from bench.config import make_config

    return make_config("default")
