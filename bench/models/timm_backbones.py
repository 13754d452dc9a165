"""timm backbones adapted to 1x28x28 input, with timm's attention blocks (`attn_layer`).

timm's ResNet family takes `block_args=dict(attn_layer=...)`: "se" (squeeze-excitation),
"cbam", "gc" (global context), "eca", "nl" (non-local) and the rest of
`timm.layers.create_attn`. The 7x7/stride-2 stem and max-pool would shrink 28x28 to 7x7
before the first stage, so the stem becomes a 3x3/stride-1 conv and the pool is dropped.

EfficientNet and MobileNetV2 (timm's `_efficientnet_blocks`) have no `attn_layer`: their
blocks carry an attention slot, `se`, after the depthwise conv (EfficientNet fills it with
its own squeeze-excitation, MobileNetV2 leaves it empty). With `attn_layer` set, every
block's slot gets `create_attn(attn_layer, mid_channels)`, and "none" empties it (so
`efficientnet_b0` with attn "none" has no SE at all; without `attn_layer` timm's own
architecture stays). Their stride-2 3x3 stem stays and the last of their four stride-2 stages
runs at stride 1: 28x28 goes 14, 7, 4, 2, so the last conv (Grad-CAM's layer) is 2x2. (A
stride-1 stem gives the same 2x2 map at ~2x the multiply-adds: EfficientNet-B0 with SE 29.5
vs 16.0 MMAC per image, MobileNetV2 21.8 vs 10.4; its training steps ran ~1.7x slower on the
2-core CPU, more than the zoo could afford.)

`placement`: "blocks" (the default, as above) or "head": ONE block (bench.models.attention) on
the backbone's last feature map, before its global pool and linear layer, the blocks then empty.
`width`/`depth` scale EfficientNet-B0 and MobileNetV2 by timm's channel and repeat multipliers.

CBAM's channel attention (timm `ChannelAttn`) sends its avg- and max-pooled branches through
one ReLU module; captum's DeepLift and DeepSHAP refuse a non-linearity used twice in one
forward. `_own_activations` gives the max branch its own ReLU: the same function and the same
state_dict (a ReLU has no weights), so checkpoints and weights hashes do not change.
https://github.com/huggingface/pytorch-image-models
"""

from __future__ import annotations

import copy
import functools
from typing import Annotated

from torch import nn

from bench.contract.models import Normalized
from bench.contract.params import Range
from bench.models import MODELS

ATTN_ALIASES = {"non-local": "nl", "nonlocal": "nl", "global-context": "gc", "none": None, "": None}
PLACEMENTS = ("blocks", "head")
SCALABLE = {"efficientnet_b0": "_gen_efficientnet", "mobilenetv2_100": "_gen_mobilenet_v2"}  # arch -> timm generator


def _adapt_stem(net: nn.Module, stem_stride: int = 2) -> None:
    conv = getattr(net, "conv1", None)
    if isinstance(conv, nn.Conv2d) and conv.kernel_size == (7, 7):
        net.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1, bias=False)
    if isinstance(getattr(net, "maxpool", None), nn.MaxPool2d):
        net.maxpool = nn.Identity()
    if isinstance(getattr(net, "conv_stem", None), nn.Conv2d):  # EfficientNet / MobileNet: see the docstring
        if stem_stride == 1:  # the stem keeps 28x28 and all four stride-2 stages stay: 28, 14, 7, 4, 2
            net.conv_stem.stride = (1, 1)
            return
        strided = [b.conv_dw for b in net.modules()
                   if isinstance(getattr(b, "conv_dw", None), nn.Conv2d) and b.conv_dw.stride == (2, 2)]
        if strided:
            strided[-1].stride = (1, 1)


@functools.cache
def _channel_attn_own_acts() -> type:
    from timm.layers.cbam import ChannelAttn

    class ChannelAttnOwnActs(ChannelAttn):
        """timm's CBAM channel attention with a second ReLU (`act_max`) for the max-pooled branch."""

        def forward(self, x):
            x_avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
            x_max = self.fc2(self.act_max(self.fc1(x.amax((2, 3), keepdim=True))))
            return x * self.gate(x_avg + x_max)

    ChannelAttnOwnActs.__module__, ChannelAttnOwnActs.__qualname__ = __name__, "ChannelAttnOwnActs"
    return ChannelAttnOwnActs


def __getattr__(name: str):  # the class is made on first use (timm imports lazily) and pickles by name
    if name == "ChannelAttnOwnActs":
        return _channel_attn_own_acts()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _own_activations(net: nn.Module) -> None:
    """Give each CBAM channel attention a second ReLU for its max-pooled branch (see the docstring)."""
    from timm.layers.cbam import ChannelAttn

    for m in net.modules():
        if type(m) is ChannelAttn:
            m.act_max = copy.deepcopy(m.act)
            m.__class__ = _channel_attn_own_acts()


def _fill_attention_slots(net: nn.Module, attn: str | None, arch: str) -> None:
    """Put `attn` (None: nothing) in the `se` slot of every EfficientNet/MobileNet block."""
    from timm.layers import create_attn

    slots = [m for m in net.modules() if hasattr(m, "se") and isinstance(getattr(m, "conv_dw", None), nn.Conv2d)]
    if not slots:
        raise ValueError(f"timm model {arch!r} has neither attn_layer nor attention slots: leave attn_layer out")
    for block in slots:
        block.se = create_attn(attn, block.conv_dw.out_channels) if attn else nn.Identity()


def _check_placement(placement: str, attn_layer: str | None) -> None:
    if placement not in PLACEMENTS:
        raise ValueError(f"placement {placement!r}: expected {' | '.join(PLACEMENTS)}")
    if placement == "blocks" and attn_layer == "pam":
        raise ValueError("attn_layer 'pam' (DANet's position attention) goes at the head: set placement='head'")


def _add_head_attention(net: nn.Module, attn: str) -> None:
    """One attention block between the backbone's feature map and its global pool (bench.models.attention)."""
    from bench.models.attention import AttentionPool, head_attention

    net.global_pool = AttentionPool(head_attention(attn, net.num_features), net.global_pool)


def _last_conv_block(net: nn.Module) -> str:
    for name in ("layer4", "stages.3", "features"):
        try:
            net.get_submodule(name)
            return name
        except AttributeError:
            continue
    return [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d)][-1]


@MODELS.register()
def build_timm(arch: str = "resnet18", attn_layer: str | None = None, n_classes: int = 10,
               mean: Annotated[float, Range("[-10, 10]")] = 0.1307,
               std: Annotated[float, Range("(0, 100]")] = 0.3081, placement: str = "blocks",
               width: Annotated[float, Range("(0, 4]")] = 1.0, depth: Annotated[float, Range("(0, 4]")] = 1.0,
               stem_stride: Annotated[int, Range("[1, 2]")] = 2, **timm_kwargs) -> nn.Module:
    """timm model `arch` with `attn_layer` in every block or once at the head, 1 input channel, 28x28 stem.

    Args:
        arch: a timm model name.
        attn_layer: the attention (timm's create_attn names, "pam" at the head; "none": none).
        placement: "blocks" (every block, timm's slots) or "head" (one block before the pool; the
            blocks then carry none, so EfficientNet loses its own SE).
        width, depth: timm's channel and repeat multipliers, for "efficientnet_b0" and
            "mobilenetv2_100" only (1.0: timm's model as it is).
        stem_stride: EfficientNet / MobileNet only: 2 (timm's stem; the last stride-2 stage runs
            at stride 1) or 1 (the stem keeps 28x28, every stage keeps its stride). Both end on a
            2x2 map; 1 costs ~2x the multiply-adds and learns the thin strokes better.
    Returns:
        the model, wrapped to take [0,1] pixels.
    """
    import timm

    _check_placement(placement, attn_layer)
    if stem_stride != 2 and arch not in SCALABLE:
        raise ValueError(f"stem_stride applies to {' and '.join(SCALABLE)} only, not {arch!r}")
    attn = ATTN_ALIASES.get(attn_layer, attn_layer) if attn_layer else None
    block_attn = attn if placement == "blocks" else None
    kwargs = dict(pretrained=False, in_chans=1, num_classes=n_classes, **timm_kwargs)
    resnet = arch.startswith(("resnet", "resnext", "wide_resnet"))
    if block_attn and resnet:
        kwargs["block_args"] = dict(attn_layer=block_attn)
    if width == 1.0 and depth == 1.0:
        net = timm.create_model(arch, **kwargs)
    elif arch in SCALABLE:
        from timm.models import efficientnet

        net = getattr(efficientnet, SCALABLE[arch])(arch, channel_multiplier=width, depth_multiplier=depth, **kwargs)
    else:
        raise ValueError(f"width/depth scale only {' and '.join(SCALABLE)}, not {arch!r}")
    if not resnet and (attn_layer is not None or placement == "head"):
        _fill_attention_slots(net, block_attn, arch)
    _adapt_stem(net, stem_stride)
    cam_layer = _last_conv_block(net)
    if placement == "head" and attn:
        _add_head_attention(net, attn)
    _own_activations(net)
    return Normalized(net, mean, std, cam_layer=cam_layer)


@MODELS.register()
def build_resnet_cbam(n_classes: int = 10, layers: Annotated[tuple, Range("[1, 16]")] = (1, 1, 1, 1),
                      attn_layer: str = "cbam", channels: Annotated[tuple, Range("[1, 4096]")] = (32, 64, 128, 256),
                      mean: Annotated[float, Range("[-10, 10]")] = 0.1307,
                      std: Annotated[float, Range("(0, 100]")] = 0.3081, placement: str = "blocks") -> nn.Module:
    """A small timm ResNet (BasicBlock, one block per stage) with CBAM in every block, for 28x28.

    The 7x7/2 stem becomes 3x3/1 and the max-pool stays, so stages run at 14, 7, 4, 2 pixels;
    channels (32, 64, 128, 256) give 1.25M parameters (CPU-trainable in minutes).

    Args:
        placement: "blocks" (`attn_layer` in every block) or "head" (one block on layer4's
            output, before the pool; "pam" only here).
    Returns:
        the model, wrapped to take [0,1] pixels.
    """
    from timm.models.resnet import BasicBlock, ResNet

    _check_placement(placement, attn_layer)
    attn = ATTN_ALIASES.get(attn_layer, attn_layer)
    block_attn = attn if placement == "blocks" else None
    net = ResNet(BasicBlock, list(layers), num_classes=n_classes, in_chans=1, channels=tuple(channels),
                 block_args=dict(attn_layer=block_attn) if block_attn else None)
    conv = net.conv1
    net.conv1 = nn.Conv2d(1, conv.out_channels, 3, 1, 1, bias=False)
    if placement == "head" and attn:
        _add_head_attention(net, attn)
    _own_activations(net)
    return Normalized(net, mean, std, cam_layer="layer4")
