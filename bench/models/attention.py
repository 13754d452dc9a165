"""Attention blocks for the head placement: one block on the backbone's feature map, before the pool.

`placement="head"` (bench.models.timm_backbones) puts ONE block between a backbone's last
feature map and its head (global pool + linear), as the seed project did; `"blocks"` keeps
timm's in-block attention. The blocks:

- "se": squeeze-excitation (Hu et al. 2018, https://arxiv.org/abs/1709.01507), timm `SEModule`;
- "cbam": channel then spatial attention (Woo et al. 2018, https://arxiv.org/abs/1807.06521),
  timm `CbamModule`;
- "gc": global context (Cao et al. 2019, https://arxiv.org/abs/1904.11492), timm `GlobalContext`;
- "pam": DANet's position attention module (Fu et al. 2019, https://arxiv.org/abs/1809.02983),
  `PositionAttention` below (timm has none).

The timm blocks come from `timm.layers.create_attn`, the same factory the in-block placement uses.
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_ATTENTION = ("se", "cbam", "gc", "pam")


class PositionAttention(nn.Module):
    """DANet's position attention module (PAM): every position attends to every other position.

    query, key: 1x1 convs to C/8 channels (at least 1); value: a 1x1 conv to C.
    energy = Q^T K over the H*W positions, A = softmax over the last axis, out = V A^T
    reshaped to (N, C, H, W), and y = gamma * out + x with the scalar gamma learned from 0,
    so a fresh module is exactly the identity. https://arxiv.org/abs/1809.02983

    Args:
        channels: C, the input (and output) channels.
        reduction: C / (query and key channels); DANet's 8.
    Returns:
        (in forward) a tensor shaped like the input.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        inner = max(1, channels // reduction)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.softmax = nn.Softmax(dim=-1)  # a module, so captum's DeepLift sees the non-linearity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C/8)
        k = self.key(x).flatten(2)  # (N, C/8, HW)
        attn = self.softmax(torch.bmm(q, k))  # (N, HW, HW): row i = where position i looks
        v = self.value(x).flatten(2)  # (N, C, HW)
        out = torch.bmm(v, attn.transpose(1, 2)).reshape(n, c, h, w)
        return self.gamma * out + x


class AttentionPool(nn.Module):
    """An attention block, then the backbone's own global pool: the head placement's one block.

    It replaces a timm model's `global_pool`, so `forward_head` runs attention -> pool -> linear
    and `forward_features` stays the backbone's.

    Args:
        attn: the attention block (shape-preserving on (N, C, H, W)).
        pool: the model's global pool module.
    Returns:
        (in forward) the pooled features, as `pool` returns them.
    """

    def __init__(self, attn: nn.Module, pool: nn.Module) -> None:
        super().__init__()
        self.attn = attn
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.attn(x))


def head_attention(name: str, channels: int) -> nn.Module:
    """The head placement's block `name` ("se" | "cbam" | "gc" | "pam") on `channels` channels.

    Args:
        name: one of HEAD_ATTENTION.
        channels: the backbone's output channels.
    Returns:
        the block, shape-preserving.
    """
    if name == "pam":
        return PositionAttention(channels)
    if name not in HEAD_ATTENTION:
        raise ValueError(f"head attention {name!r}: expected one of {', '.join(HEAD_ATTENTION)} (or none)")
    from timm.layers import create_attn

    return create_attn(name, channels)
