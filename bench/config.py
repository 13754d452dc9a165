"""Run configuration: frozen dataclasses filled from a TOML preset plus `--set k=v` overrides.

Unknown keys and wrong types are errors (ConfigError, one line). Solver, method and metric
parameters are kept as plain tables here and validated by each entry's own Params dataclass.
This module imports no torch.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A preset or override is malformed."""


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
    metric_subset: dict = field(default_factory=dict)  # metric -> first n errors (costly re-explaining ones)
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


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check/convert a TOML value against a dataclass field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, typing.get_args(hint)[0], where) for v in value)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    raise ConfigError(f"{where}: unsupported type {hint}")


def build(cls: type, table: dict, where: str = "") -> Any:
    """Build dataclass `cls` from a table; unknown keys and wrong types are ConfigErrors."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown key {where + '.' if where else ''}{unknown[0]}{hint}")
    kwargs = {k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in table.items()}
    return cls(**kwargs)


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
