"""The plugin contract: solvers/ and metrics/ see bench only through bench.contract; bench.contract sees
only the standard library, numpy and torch; every built-in name is written once (its declaration) and
registered by its module's decorator; every registered model honours the model contract."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; relative imports resolved against its package)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = path.parent.relative_to(ROOT).parts[: len(path.parent.relative_to(ROOT).parts) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            out += [base] + [f"{base}.{a.name}" for a in node.names if base == "bench"]
    return out


@pytest.mark.parametrize("folder", ["solvers", "metrics"])
def test_plugins_import_bench_only_through_the_contract(folder):
    bad = []
    for path in sorted((ROOT / folder).glob("*.py")):
        for mod in _imports(path):
            top = mod.split(".")
            if top[0] == "bench" and mod != "bench" and top[1] != "contract":
                bad.append(f"{path.relative_to(ROOT)}: {mod}")
    assert not bad, "imports of bench outside bench.contract:\n" + "\n".join(bad)


def test_the_contract_imports_only_stdlib_numpy_and_torch():
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch", "__future__"}
    bad = [f"{p.name}: {m}" for p in sorted((ROOT / "bench" / "contract").glob("*.py")) for m in _imports(p)
           if m.split(".")[0] not in allowed and not m.startswith("bench.contract")]
    assert not bad, bad


def test_listing_the_registries_imports_no_torch():
    code = ("import sys, json\nfrom bench.contract import SOLVERS, ATTRIBUTIONS, CF_METRICS, ATTR_METRICS, MODELS, DATASETS\n"
            "n = sum(len(r.names()) for r in (SOLVERS, ATTRIBUTIONS, CF_METRICS, ATTR_METRICS, MODELS, DATASETS))\n"
            "print(json.dumps([n, 'torch' in sys.modules]))")
    n, torch_loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                check=True, cwd=ROOT).stdout)
    assert n > 40 and not torch_loaded


def test_every_builtin_module_registers_exactly_what_its_package_declares():
    """Each built-in's name is written once, in its package's declarations: in a fresh interpreter
    every module of the built-in packages imports (a nameless decorator without a declaration, or
    a decorator naming a declared entry, raises), no decorator adds a name `bench list` cannot see,
    and every declared object carries its module's decorator."""
    code = """
import importlib, json, pkgutil
from bench.contract import registry as R
regs = [R.DATASETS, R.MODELS, R.SOLVERS, R.ATTRIBUTIONS, R.CF_METRICS, R.ATTR_METRICS]
declared = {r.kind: r.names() for r in regs}
for pkg in ("solvers", "metrics", "bench.models", "bench.data"):
    for m in pkgutil.iter_modules(importlib.import_module(pkg).__path__):
        importlib.import_module(f"{pkg}.{m.name}")
print(json.dumps(dict(declared=declared, names={r.kind: r.names() for r in regs},
                      decorated={r.kind: sorted(r._loaded) for r in regs})))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-1500:]
    out = json.loads(run.stdout)
    for kind, declared in out["declared"].items():
        assert out["names"][kind] == declared, kind
        assert out["decorated"][kind] == sorted(declared), kind


MODEL_PARAMS = {"cnn": {}, "resnet_cbam": {}, "timm": dict(arch="resnet18", attn_layer="se")}
# the zoo's other backbone families (attention in their blocks' `se` slot), checked like the rest
ZOO_CASES = [dict(arch="efficientnet_b0", attn_layer="cbam"), dict(arch="mobilenetv2_100", attn_layer="nl")]


def test_every_registered_model_is_in_the_contract_test():
    from bench.contract import MODELS

    assert set(MODELS.names()) == set(MODEL_PARAMS)


@pytest.mark.parametrize("name,params", [(n, MODEL_PARAMS[n]) for n in sorted(MODEL_PARAMS)]
                         + [("timm", c) for c in ZOO_CASES], ids=lambda v: v if isinstance(v, str) else v.get("arch", "-"))
def test_model_contract(name, params, tmp_path):
    """Forward shape on [0,1] input, a real Grad-CAM layer, and an identical model after a cache round trip."""
    from bench import checkpoints
    from bench.contract import MODELS, weights_hash

    def build():
        torch.manual_seed(0)
        return MODELS.get(name)(n_classes=10, **params).eval()

    model = build()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    layer = model.get_submodule(model.cam_layer)  # raises if the named layer does not exist
    seen = []
    handle = layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.no_grad():
        model(x)
    handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][0] == 3  # a spatial feature map per image
    path = tmp_path / "m.pt"
    checkpoints.save(path, model, dict(model=name))
    again = build()
    torch.nn.init.zeros_(next(again.parameters()))  # not the same weights until loaded
    checkpoints.load_into(again, path)
    with torch.no_grad():
        assert torch.equal(again(x), out)
    assert weights_hash(again) == weights_hash(model)


@pytest.mark.parametrize("arch", ["efficientnet_b0", "mobilenetv2_100"])
def test_attention_slots_of_efficientnet_and_mobilenet(arch):
    """Every inverted-residual block gets the asked attention; "none" empties EfficientNet's own SE."""
    from timm.layers.cbam import CbamModule
    from timm.layers.non_local_attn import NonLocalAttn
    from timm.models._efficientnet_blocks import SqueezeExcite

    from bench.models.timm_backbones import build_timm

    def blocks(model):
        return [m for m in model.modules() if hasattr(m, "se") and hasattr(m, "conv_dw")]

    for attn, cls in (("cbam", CbamModule), ("nl", NonLocalAttn)):
        model = build_timm(arch, attn)
        assert blocks(model) and all(isinstance(b.se, cls) for b in blocks(model))
    plain = build_timm(arch, "none")
    assert not any(isinstance(m, (SqueezeExcite, CbamModule)) for m in plain.modules())
    with torch.no_grad():  # 28x28 -> 14 (stem), 7, 4, 2: the last stride-2 stage runs at stride 1
        assert plain.net.forward_features(torch.rand(1, 1, 28, 28)).shape[-2:] == (2, 2)
    assert plain.net.conv_stem.stride == (2, 2)
    with pytest.raises(ValueError, match="attention slots"):
        build_timm("vit_tiny_patch16_224", "se")


@pytest.mark.filterwarnings("ignore::UserWarning:captum")  # captum's notices about hooks and requires_grad
@pytest.mark.parametrize("build", ["resnet_cbam", "efficientnet_b0"])
def test_cbam_runs_deeplift_and_deepshap_with_the_same_function(build, mnist):
    """CBAM's channel attention gets a ReLU per pooled branch: the same outputs and state_dict as
    timm's module (which shares one ReLU and which captum refuses), and DeepLift/DeepSHAP run."""
    from captum.attr import DeepLift, DeepLiftShap
    from timm.layers.cbam import ChannelAttn

    from bench.contract.oracle import Oracle
    from bench.models.timm_backbones import build_resnet_cbam, build_timm
    from solvers import ATTRIBUTIONS

    torch.manual_seed(0)
    model = (build_resnet_cbam() if build == "resnet_cbam" else build_timm(build, "cbam")).eval()
    x, target = mnist.test.x[:4], mnist.test.y[:4]
    with torch.no_grad():
        out = model(x)
    keys = list(model.state_dict())
    oracle = Oracle(model, "cpu")
    oracle.start(len(x))
    attr = ATTRIBUTIONS.get("deeplift")(oracle)(x, target).attr
    assert attr.shape == x.shape and torch.isfinite(attr).all() and attr.abs().sum() > 0
    shap = DeepLiftShap(model).attribute(x, baselines=mnist.train.x[:3], target=target)
    assert torch.isfinite(shap).all() and shap.abs().sum() > 0

    patched = [m for m in model.modules() if isinstance(m, ChannelAttn)]
    assert patched and all(type(m) is not ChannelAttn for m in patched)
    for m in patched:  # back to timm's module, one ReLU for both branches
        m.__class__ = ChannelAttn
    with torch.no_grad():
        assert torch.equal(model(x), out)
    assert list(model.state_dict()) == keys
    with pytest.raises(RuntimeError, match="used more than once"):
        DeepLift(model).attribute(x, target=target)
