"""The head placement's attention blocks (PAM after DANet; timm's SE/CBAM/GC) and where they sit."""

import pytest
import torch
from torch import nn

from bench.models.attention import AttentionPool, PositionAttention, head_attention
from bench.models.timm_backbones import build_resnet_cbam, build_timm


def test_pam_keeps_the_shape_and_starts_as_the_identity():
    torch.manual_seed(0)
    pam = PositionAttention(16)
    x = torch.randn(2, 16, 3, 5)
    y = pam(x)
    assert y.shape == x.shape and torch.equal(y, x)  # gamma = 0: exactly x
    assert pam.query.out_channels == pam.key.out_channels == 2 and pam.value.out_channels == 16  # C/8, C


def test_pam_matches_the_papers_sums_once_gamma_is_set():
    """y[c, i] = gamma * sum_j V[c, j] softmax_j(sum_d Q[d, i] K[d, j]) + x[c, i], written out with einsum."""
    torch.manual_seed(0)
    pam = PositionAttention(8)
    with torch.no_grad():
        pam.gamma.fill_(0.7)
    x = torch.randn(2, 8, 3, 4)
    y = pam(x)
    assert not torch.allclose(y, x)
    q, k, v = (conv(x).flatten(2) for conv in (pam.query, pam.key, pam.value))
    attn = torch.einsum("ndi,ndj->nij", q, k).softmax(-1)
    expected = 0.7 * torch.einsum("ncj,nij->nci", v, attn).reshape(x.shape) + x
    torch.testing.assert_close(y, expected)


def test_gradients_reach_gamma_from_zero():
    torch.manual_seed(0)
    pam = PositionAttention(8)
    pam(torch.randn(2, 8, 4, 4)).square().sum().backward()
    assert pam.gamma.grad is not None and pam.gamma.grad.abs().item() > 0
    assert pam.value.weight.grad.abs().sum() == 0  # at gamma = 0 the branch's own weights get no signal yet


@pytest.mark.parametrize("name", ["se", "cbam", "gc", "pam"])
def test_every_head_block_preserves_the_feature_map(name):
    torch.manual_seed(0)
    x = torch.randn(2, 32, 2, 2)
    assert head_attention(name, 32)(x).shape == x.shape
    with pytest.raises(ValueError, match="head attention"):
        head_attention("nl2", 32)


def _blocks_attention(model):
    return [m for m in model.modules() if getattr(m, "se", None) is not None and not isinstance(m.se, nn.Identity)]


@pytest.mark.parametrize("name", ["se", "cbam", "gc", "pam"])
def test_head_placement_is_one_block_before_the_pool(name):
    """ResNet and EfficientNet: no attention in any block, one at net.global_pool.attn, the same logits
    as the backbone's own pool on the attended map."""
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28)
    for model in (build_resnet_cbam(attn_layer=name, placement="head", channels=(8, 16, 32, 64)),
                  build_timm("efficientnet_b0", name, placement="head", width=0.25, depth=0.5)):
        model.eval()
        assert not _blocks_attention(model)
        pool = model.net.global_pool
        assert isinstance(pool, AttentionPool) and type(pool.attn) is type(head_attention(name, 8))
        with torch.no_grad():
            feats = model.net.forward_features((x - model.mean) / model.std)
            by_hand = model.net.get_classifier()(pool.pool(pool.attn(feats)))
            assert torch.allclose(model(x), by_hand, atol=1e-6)
        assert model.get_submodule(model.cam_layer) is not pool.attn  # Grad-CAM keeps the backbone's last block


def test_blocks_placement_is_todays_and_refuses_pam():
    torch.manual_seed(0)
    model = build_resnet_cbam(attn_layer="se", channels=(8, 16, 32, 64))
    assert len(_blocks_attention(model)) == 4 and not isinstance(model.net.global_pool, AttentionPool)
    with pytest.raises(ValueError, match="placement='head'"):
        build_resnet_cbam(attn_layer="pam")
    with pytest.raises(ValueError, match="placement"):
        build_timm("mobilenetv2_100", "se", placement="neck")


def test_width_and_depth_are_timms_multipliers():
    """width 0.5 of mobilenetv2_100 is timm's own mobilenetv2_050; depth 0.5 halves the repeats (rounded up)."""
    import timm

    half = build_timm("mobilenetv2_100", width=0.5)
    ref = timm.create_model("mobilenetv2_050", in_chans=1, num_classes=10)
    assert [p.shape for p in half.net.parameters()] == [p.shape for p in ref.parameters()]
    shallow = build_timm("efficientnet_b0", "none", depth=0.5)
    assert [len(s) for s in shallow.net.blocks] == [1, 1, 1, 2, 2, 2, 1]  # B0's 1, 2, 2, 3, 3, 4, 1
    with pytest.raises(ValueError, match="width/depth"):
        build_timm("resnet18", width=0.5)


def test_a_stride_1_stem_keeps_28x28_and_every_stage_stride():
    """stem_stride 1: the stem keeps 28x28, timm's four stride-2 stages stay, the last map is 2x2 as before."""
    x = torch.zeros(1, 1, 28, 28)
    for arch in ("efficientnet_b0", "mobilenetv2_100"):
        two, one = (build_timm(arch, "none", width=0.5, depth=0.5, stem_stride=s) for s in (2, 1))
        assert two.net.conv_stem.stride == (2, 2) and one.net.conv_stem.stride == (1, 1)
        strided = [b.conv_dw.stride for b in one.net.modules() if isinstance(getattr(b, "conv_dw", None), torch.nn.Conv2d)]
        assert strided.count((2, 2)) == 4  # with the stride-2 stem, the last of them runs at 1
        assert [b.conv_dw.stride for b in two.net.modules()
                if isinstance(getattr(b, "conv_dw", None), torch.nn.Conv2d)].count((2, 2)) == 3
        assert one.net.forward_features(x).shape[-2:] == two.net.forward_features(x).shape[-2:] == (2, 2)
        assert sum(p.numel() for p in one.parameters()) == sum(p.numel() for p in two.parameters())
    with pytest.raises(ValueError, match="stem_stride applies to"):
        build_timm("resnet18", stem_stride=1)


def test_the_issue_25_grid_is_a_valid_study_of_24_models_x_3_seeds_x_2_row_kinds():
    """zoo_v2 (the grid the zoo will be republished from): every cell validates, 24 models x 3 seeds x 2 row kinds."""
    from bench.config import make_config
    from bench.study.cells import cells
    from bench.validate import validate

    cfg = make_config("zoo_v2")
    validate(cfg)
    grid = cells(cfg)
    labels = {c.label for c in grid}
    assert len(grid) == 144 and len(labels) == 24  # each (model, seed): its own errors and the common set
    assert sorted({c.rows for c in grid}) == ["common", "errors"]
    assert {c.cfg.model_params.get("placement", "blocks") for c in grid} == {"head", "blocks"}
    assert sum(c.cfg.model_params.get("attn_layer") == "pam" for c in grid) == 18  # PAM at the head only
