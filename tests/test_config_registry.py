"""Config: presets, overrides, errors. Registry: lazy entries, collisions, suggestions."""

import re

import pytest

from bench.api.registry import Registry, RegistryError
from bench.config import ConfigError, make_config, preset_names


def test_default_preset_and_overrides():
    cfg = make_config("default", ["train.epochs=5", "counterfactuals.solvers=[\"gradient\"]", "seed=3"],
                      device="cpu")
    assert cfg.train.epochs == 5 and cfg.seed == 3 and cfg.device == "cpu"
    assert cfg.counterfactuals.solvers == ("gradient",)
    assert "default" in preset_names()


@pytest.mark.parametrize("override, message", [
    ("trian.epochs=3", "unknown key trian (did you mean 'train'?)"),
    ("train.epochs=three", "train.epochs: expected an integer"),
    ("train.lr=true", "train.lr: expected a number"),
    ("seed", "--set expects key=value"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config("default", [override])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        make_config("nope")


def test_registry_declares_lazily_and_suggests_close_names():
    reg = Registry("thing")
    reg.declare("alpha", "json:dumps", "a lazily imported function")
    assert reg.names() == ["alpha"]
    import json

    assert reg.get("alpha") is json.dumps
    with pytest.raises(RegistryError, match="did you mean 'alpha'"):
        reg.get("alpah")


def test_registry_collisions_are_errors():
    reg = Registry("thing")

    @reg.register("one")
    def first():
        """First."""

    with pytest.raises(RegistryError, match="registered twice"):
        @reg.register("one")
        def second():
            """Second."""

    reg.declare("two", "json:loads", "")
    with pytest.raises(RegistryError, match="declared at json:loads"):
        @reg.register("two")
        def third():
            """Third."""


def test_every_declared_entry_resolves():
    from bench.data import DATASETS
    from bench.models import MODELS
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    for reg in (DATASETS, MODELS, SOLVERS, ATTRIBUTIONS, CF_METRICS, ATTR_METRICS):
        for name in reg.names():
            assert callable(reg.get(name)), f"{reg.kind} {name}"


def test_presets_extend_and_an_empty_table_clears():
    full, default = make_config("full"), make_config("default")
    assert default.counterfactuals.subset and full.counterfactuals.subset == {}
    assert full.attributions.metric_subset == {} and full.attributions.methods == default.attributions.methods
    assert make_config("ci").counterfactuals.params["growing_spheres"]["n_in_layer"] == 500
