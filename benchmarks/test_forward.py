"""The model's raw forward speed: eager vs the oracle's inference-optimised copy (rows/s ratio).

Run: pytest benchmarks -o addopts= --benchmark-only -k forward
"""

import pytest
import torch

from bench.api import MODELS, Oracle


@pytest.mark.parametrize("name", ["cnn", "resnet_cbam"])
@pytest.mark.parametrize("fast", [False, True], ids=["eager", "optimised"])
def test_forward_rows(benchmark, name, fast):
    torch.manual_seed(0)
    oracle = Oracle(MODELS.get(name)(), "cpu", fast=fast)
    x = torch.rand(1024, 1, 28, 28)
    oracle.logits(x[:8])  # builds the optimised copy outside the timing
    benchmark.extra_info["rows"] = len(x)
    benchmark(oracle.logits, x)
