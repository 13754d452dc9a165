"""The wrapper that lets every model take [0,1] pixels: normalisation lives inside the model."""

from __future__ import annotations

import torch
from torch import nn


class Normalized(nn.Module):
    """(x - mean) / std, then the wrapped network. `cam_layer` names the Grad-CAM layer."""

    def __init__(self, net: nn.Module, mean: float, std: float, cam_layer: str) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))
        self.cam_layer = f"net.{cam_layer}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)
