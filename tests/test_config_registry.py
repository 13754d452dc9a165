"""Config: presets, overrides, errors. Registry: lazy entries, collisions, suggestions."""

import re

import pytest

from bench.config import ConfigError, make_config
from bench.contract.registry import Registry, RegistryError
from bench.toml_io import preset_names


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


def test_a_builtin_name_is_written_once_and_collisions_are_errors():
    """A declared entry's decorator takes no name and finds its declaration by "module:qualname";
    naming a declared entry again, a nameless decorator without a declaration, a second object under
    one name and one object under two names are errors."""
    reg = Registry("thing", declared_in="tests")

    def builtin():
        """A built-in."""

    reg.declare("five", f"{__name__}:{builtin.__qualname__}", "declared once")
    assert reg.register()(builtin) is builtin and builtin.registry_name == "five"
    assert reg.get("five") is builtin and reg.entry("five").summary == "declared once"

    @reg.register("one")
    def first():
        """First plugin: its docstring's first line is its summary.

        (not this line)
        """

    assert reg.entry("one").summary == "First plugin: its docstring's first line is its summary."
    with pytest.raises(RegistryError, match="'one' is registered twice: at .*first and at .*second"):
        @reg.register("one")
        def second():
            """Second."""

    with pytest.raises(RegistryError, match="'five' is declared in tests: .* cannot register it by name"):
        reg.register("five")(builtin)
    with pytest.raises(RegistryError, match=r"registers a thing without a name, but tests declares none at .*undeclared"):
        @reg.register()
        def undeclared():
            """Undeclared."""

    for name, target in (("five", "json:dumps"), ("six", f"{__name__}:{builtin.__qualname__}")):
        with pytest.raises(RegistryError, match="is declared already"):
            reg.declare(name, target, "")


@pytest.mark.parametrize("model, params, message", [
    ("cnn", {"meen": 0.1}, "unknown key model_params.meen (did you mean 'mean'?)"),
    ("cnn", {"arch": "resnet18"}, "unknown key model_params.arch (known: mean, std)"),
    ("cnn", {"std": "wide"}, "model_params.std: expected float, got 'wide'"),
    ("cnn", {"n_classes": 3}, "model_params.n_classes is set by the dataset"),
    ("timm", {"attn_layr": "se"}, "unknown key model_params.attn_layr (did you mean 'attn_layer'?): model 'timm'"),
    ("timm", {"arch": 18}, "model_params.arch: expected str, got 18"),
    ("timm", {"arch": "resnet1800"}, "model_params: model 'timm' refuses arch='resnet1800': RuntimeError: Unknown model"),
    ("timm", {"drop_rat": 0.1}, "unknown key model_params.drop_rat: model 'timm' refuses drop_rat=0.1: TypeError"),
    ("timm", {"std": 0}, "model_params.std must be > 0, got 0"),
    ("timm", {"n_classes": 3}, "model_params.n_classes is set by the dataset"),
])
def test_model_params_are_checked_by_name(model, params, message):
    """n_classes comes from the dataset wherever the builder puts it (cnn first, timm third); every
    other parameter is matched by name, and what timm's own keywords refuse is one line too."""
    import json

    from bench.validate import validate

    sets = [f'model="{model}"', *(f"model_params.{k}={json.dumps(v)}" for k, v in params.items())]
    with pytest.raises(ConfigError) as e:
        validate(make_config("tiny", sets, device="cpu"))
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_good_timm_params_pass_through_to_timm():
    from bench.validate import validate

    sets = ['model="timm"', 'model_params={arch = "resnet18", attn_layer = "se", layers = [1, 1, 1, 1]}']
    validate(make_config("tiny", sets, device="cpu"))


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


@pytest.mark.parametrize("override, message", [
    ("train.weight_decay=-0.1", "train.weight_decay must be >= 0, got -0.1"),
    ('train.schedule="cosine"', "train.schedule must be onecycle | constant, got 'cosine'"),
    ("n_bootstrap=0", "n_bootstrap must be >= 1, got 0"),
    ("n_figure=-1", "n_figure must be >= 0, got -1"),
    ("attributions.batch_size=0", "attributions.batch_size must be >= 1, got 0"),
    ('attributions.metric_subset.q_mprt="all"', "attributions.metric_subset.q_mprt must be an integer >= 1"),
    ("counterfactuals.params.gradient=3", "counterfactuals.params.gradient must be a table, got 3"),
    ('device="cuda:x"', "device must be auto | cpu | cuda[:N], got 'cuda:x'"),
])
def test_config_ranges_are_one_line_errors_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config("default", [override])


def test_toml_values_read_back_exactly():
    import tomllib

    from bench.toml_io import to_toml

    tricky = {"*": 3, "a key": 1, 'q"uote': 2}
    cfg = make_config("default", ['out="C:\\\\runs \\"x\\"\\n\\té"', "train.lr=1e-10",
                                  f"counterfactuals.subset={{{', '.join(f'{k!r} = {v}' for k, v in tricky.items())}}}"])
    back = tomllib.loads(to_toml(cfg))
    assert back["out"] == cfg.out == 'C:\\runs "x"\n\té' and back["train"]["lr"] == 1e-10
    assert back["counterfactuals"]["subset"] == tricky
    assert "limit" not in back and "store" not in back  # None: left out (the default)


def _count_fields(cls):
    """Int Params that count something (points, steps, rows, budgets): 0 is meaningless.

    alibi_wachter's max_lam_steps (bisection rounds after alibi's initial lambda sweep) may be 0.
    """
    import dataclasses

    return [f.name for f in dataclasses.fields(cls) if (f.type == "int" or f.type.startswith("Annotated[int,"))
            and f.name != "max_lam_steps" and
            (f.name.startswith(("n_", "max_")) or f.name in ("batch_rows", "patch", "window", "stride", "k"))]


def test_every_entry_refuses_a_zero_count_and_a_negative_seed():
    import dataclasses

    from solvers import ATTRIBUTIONS, SOLVERS

    checked = 0
    for registry in (SOLVERS, ATTRIBUTIONS):
        for name in registry.names():
            cls = registry.get(name)
            for key in _count_fields(cls.Params):
                with pytest.raises(ConfigError, match=rf"^({name}\.)?{key} must be >= [1-9][0-9]*, got 0"):
                    cls.param_dict(**{key: 0})
                checked += 1
            if "seed" in {f.name for f in dataclasses.fields(cls.Params)}:
                with pytest.raises(ConfigError, match=rf"^({name}\.)?seed must be >= 0"):
                    cls.param_dict(seed=-1)
            cls.param_dict()  # the defaults are in range
    assert checked >= 30
