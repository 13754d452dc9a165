"""What a model plugin needs: the [0,1]-pixel wrapper that owns normalisation, and a weights hash."""

from __future__ import annotations

import hashlib

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


def weights_hash(model: nn.Module) -> str:
    """sha256 over the state dict (names, shapes, bytes): the model's identity in provenance."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
