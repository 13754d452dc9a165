"""Run configuration: frozen dataclasses filled from a TOML preset plus `--set k=v` overrides.

Unknown keys and wrong types are errors (ConfigError, one line). Solver, method and metric
parameters are kept as plain tables here and validated by each entry's own Params dataclass.
This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bench.api.params import ConfigError, build

# What an attribution explains: the wrong class P the model chose, the true class Q, or P against Q.
TARGET_MODES = ("predicted", "true", "contrast")


@dataclass(frozen=True)
class TrainConfig:
    """How the classifier is trained (all of it enters the checkpoint's cache key)."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    schedule: str = "onecycle"  # "onecycle" | "constant"
    weight_decay: float = 0.0
    augment: bool = False


@dataclass(frozen=True)
class CounterfactualConfig:
    """Which counterfactual solvers run, with per-solver parameter tables and subsets."""

    solvers: tuple[str, ...] = ("gradient",)
    params: dict = field(default_factory=dict)  # solver -> {param: value}
    subset: dict = field(default_factory=dict)  # solver (or "*" for all) -> first n errors (documented)
    metrics: tuple[str, ...] = ()  # empty = every registered counterfactual metric
    batch_size: int = 256
    overlap: bool = True  # run worker-process solvers (alibi) in a thread beside the rest


@dataclass(frozen=True)
class AttributionConfig:
    """Which attribution methods run, what they explain, and how they are scored."""

    methods: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    targets: tuple[str, ...] = ("predicted",)  # predicted | true | contrast
    metrics: tuple[str, ...] = ()
    metric_params: dict = field(default_factory=dict)
    metric_subset: dict = field(default_factory=dict)  # metric -> first n errors (wins over subset_by_need)
    # a metric need (bench.api.metrics.NEEDS, e.g. "explain_fn": it re-runs the method) -> first n errors
    subset_by_need: dict = field(default_factory=dict)
    subset: dict = field(default_factory=dict)
    batch_size: int = 256


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on."""

    preset: str = "default"
    dataset: str = "mnist"
    model: str = "cnn"
    model_params: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    limit: int | None = None
    out: str | None = None  # root folder; default runs/ (leaderboards/ with publish)
    publish: bool = False  # write leaderboards/<dataset>/<model>/ and pin the weights (bench.publish)
    force: bool = False  # publish from a dirty checkout anyway
    cache_dir: str = "~/.cache/bench"
    retrain: bool = False  # ignore the shipped reference weights (leaderboards/weights): train here
    data_dir: str | None = None
    store: str | None = None  # SQLite run store; default <cache_dir>/runs/<dataset>/<model>.sqlite
    n_bootstrap: int = 1000
    n_figure: int = 8
    plugins: tuple[str, ...] = ()  # modules or .py files that register entries (bench.plugins)
    train: TrainConfig = field(default_factory=TrainConfig)
    counterfactuals: CounterfactualConfig = field(default_factory=CounterfactualConfig)
    attributions: AttributionConfig = field(default_factory=AttributionConfig)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.n_bootstrap < 1:
            raise ConfigError(f"n_bootstrap must be >= 1, got {self.n_bootstrap}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_value(text: str) -> Any:
    """Parse the right side of `--set k=v` as a TOML value; bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(table: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = table
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a table")
    node[parts[-1]] = value


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("bench.presets").iterdir()
                  if p.name.endswith(".toml"))


def load_preset(name: str) -> dict:
    """The table of a preset shipped in bench/presets, or of a TOML file path."""
    path = Path(name)
    if name.endswith(".toml") and path.exists():
        text = path.read_text()
    else:
        res = resources.files("bench.presets") / f"{name}.toml"
        if not res.is_file():
            raise ConfigError(f"unknown preset {name!r} (known: {', '.join(preset_names())})")
        text = res.read_text()
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name!r} is not valid TOML: {e}") from None
    base = table.pop("extends", None)
    if base:
        merged = load_preset(base)
        _deep_merge(merged, table)
        table = merged
    return table


def _deep_merge(into: dict, other: dict) -> None:
    """Merge a preset over the one it extends; an explicitly empty table replaces (clears)."""
    for k, v in other.items():
        if isinstance(v, dict) and v and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


def make_config(preset: str = "default", overrides: list[str] = (), **cli: Any) -> RunConfig:
    """Preset + `--set key=value` overrides + explicit CLI options (None = not given)."""
    table = load_preset(preset)
    table["preset"] = Path(preset).stem if preset.endswith(".toml") else preset
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        _set_dotted(table, key.strip(), parse_value(text.strip()))
    for key, value in cli.items():
        if value is not None:
            _set_dotted(table, key, value)
    return build(RunConfig, table)
