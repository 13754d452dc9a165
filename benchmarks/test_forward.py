"""The model's raw forward speed: eager vs the oracle's inference-optimised copy (rows/s ratio).

Run: pytest benchmarks -o addopts= --benchmark-only -k forward
"""

import pytest
import torch

from bench.contract import MODELS, Oracle

# the default CNN, the published resnet_cbam, and one of each zoo family (bench/presets/zoo.toml)
MODELS_BENCHED = {"cnn": ("cnn", {}), "resnet_cbam": ("resnet_cbam", {}),
                  "efficientnet_b0-se": ("timm", dict(arch="efficientnet_b0", attn_layer="se")),
                  "mobilenetv2_100-none": ("timm", dict(arch="mobilenetv2_100", attn_layer="none"))}


@pytest.mark.parametrize("name", list(MODELS_BENCHED))
@pytest.mark.parametrize("fast", [False, True], ids=["eager", "optimised"])
def test_forward_rows(benchmark, name, fast):
    torch.manual_seed(0)
    model, params = MODELS_BENCHED[name]
    oracle = Oracle(MODELS.get(model)(**params), "cpu", fast=fast)
    x = torch.rand(1024, 1, 28, 28)
    oracle.logits(x[:8])  # builds the optimised copy outside the timing
    benchmark.extra_info["rows"] = len(x)
    benchmark(oracle.logits, x)
