"""Run configuration: frozen dataclasses filled from a TOML preset plus `--set k=v` overrides.

Unknown keys and wrong types are errors (ConfigError, one line). Solver, method and metric
parameters are kept as plain tables here and validated by each entry's own Params dataclass.
This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from bench.contract.params import ConfigError, Range, build
from bench.toml_io import load_preset, parse_value, set_dotted

# What an attribution explains: the wrong class P the model chose, the true class Q, or P against Q.
TARGET_MODES = ("predicted", "true", "contrast")
SCHEDULES = ("onecycle", "constant")
# A seed reaches numpy's legacy generator (Quantus, captum baselines): it must fit in 32 bits.
SEED = Range("[0, 2**32)")
ROWS = ("errors", "correct", "common")  # RunConfig.rows (bench.error_set; common: bench.data.common)
COUNT = Range("[1, 10**7]")  # how many errors a limit or subset keeps
BATCH = Range("[1, 65536]")


def require(ok: bool, key: str, rule: str, value: Any) -> None:
    """One-line ConfigError naming the key, e.g. `train.lr must be > 0, got -1.0`."""
    if not ok:
        raise ConfigError(f"{key} must be {rule}, got {value!r}")


def _unique(key: str, names: tuple) -> None:
    """A list of names without repeats (a repeated solver would give two rows of one entry)."""
    dup = next((x for x in names if names.count(x) > 1), None)
    require(dup is None, key, f"free of repeats ({dup!r} appears twice)", list(names))


def _counts(where: str, table: dict) -> None:
    """A subset table: name -> first n errors, every n an integer >= 1."""
    for name, n in table.items():
        require(isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"{where}.{name}",
                "an integer >= 1", n)
        COUNT.check(f"{where}.{name}", n)


@dataclass(frozen=True)
class TrainConfig:
    """How the classifier is trained (all of it enters the checkpoint's cache key)."""

    epochs: Annotated[int, Range("[1, 1000]")] = 3
    batch_size: Annotated[int, BATCH] = 128
    lr: Annotated[float, Range("(0, 10]")] = 3e-3
    schedule: str = "onecycle"  # "onecycle" | "constant"
    weight_decay: Annotated[float, Range("[0, 1]")] = 0.0
    augment: bool = False
    # stop after this many optimiser steps (a quick small model for tests and CPU studies);
    # None: every step of every epoch. Enters the cache key only when set.
    max_steps: Annotated[int | None, Range("[1, 10**8]")] = None
    # Early stopping on the validation split (never the test set); each enters the cache key
    # only when set, and with all three None training is what it was (no validation passes).
    # `epochs` (and max_steps) then cap the run; with patience the weights kept are the best on val.
    eval_every: Annotated[int | None, Range("[1, 10**8]")] = None  # steps between val passes (None: each epoch)
    val_target: Annotated[float | None, Range("(0, 1]")] = None  # stop once val accuracy >= this
    patience: Annotated[int | None, Range("[1, 10**6]")] = None  # stop after this many val passes without a gain

    @property
    def early_stopping(self) -> bool:
        """Whether training checks the validation split as it goes (any of the three fields set)."""
        return any(v is not None for v in (self.eval_every, self.val_target, self.patience))

    def __post_init__(self) -> None:
        require(self.epochs >= 1, "train.epochs", ">= 1", self.epochs)
        require(self.max_steps is None or self.max_steps >= 1, "train.max_steps", ">= 1", self.max_steps)
        require(self.eval_every is None or self.eval_every >= 1, "train.eval_every", ">= 1", self.eval_every)
        require(self.val_target is None or 0 < self.val_target <= 1, "train.val_target", "in (0, 1]", self.val_target)
        require(self.patience is None or self.patience >= 1, "train.patience", ">= 1", self.patience)
        require(self.batch_size >= 1, "train.batch_size", ">= 1", self.batch_size)
        require(self.lr > 0, "train.lr", "> 0", self.lr)
        require(self.weight_decay >= 0, "train.weight_decay", ">= 0", self.weight_decay)
        require(self.schedule in SCHEDULES, "train.schedule", " | ".join(SCHEDULES), self.schedule)


@dataclass(frozen=True)
class CounterfactualConfig:
    """Which counterfactual solvers run, with per-solver parameter tables and subsets."""

    solvers: tuple[str, ...] = ("gradient",)
    params: dict = field(default_factory=dict)  # solver -> {param: value}
    subset: dict = field(default_factory=dict)  # solver (or "*" for all) -> first n errors (documented)
    metrics: tuple[str, ...] = ()  # empty = every registered counterfactual metric
    batch_size: Annotated[int, BATCH] = 256
    overlap: bool = True  # run worker-process solvers (alibi) in a thread beside the rest

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "counterfactuals.batch_size", ">= 1", self.batch_size)
        _unique("counterfactuals.solvers", self.solvers)
        _unique("counterfactuals.metrics", self.metrics)
        _counts("counterfactuals.subset", self.subset)
        for name, table in self.params.items():
            require(isinstance(table, dict), f"counterfactuals.params.{name}", "a table", table)


@dataclass(frozen=True)
class AttributionConfig:
    """Which attribution methods run, what they explain, and how they are scored."""

    methods: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    targets: tuple[str, ...] = ("predicted",)  # predicted | true | contrast
    metrics: tuple[str, ...] = ()
    metric_params: dict = field(default_factory=dict)
    metric_subset: dict = field(default_factory=dict)  # metric -> first n errors (wins over subset_by_need)
    # a metric need (bench.contract.metrics.NEEDS, e.g. "explain_fn": it re-runs the method) -> first n errors
    subset_by_need: dict = field(default_factory=dict)
    subset: dict = field(default_factory=dict)
    batch_size: Annotated[int, BATCH] = 256

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "attributions.batch_size", ">= 1", self.batch_size)
        _unique("attributions.methods", self.methods)
        _unique("attributions.metrics", self.metrics)
        _unique("attributions.targets", self.targets)
        for mode in self.targets:
            require(mode in TARGET_MODES, "attributions.targets", "a list of " + " | ".join(TARGET_MODES), mode)
        for key in ("subset", "metric_subset", "subset_by_need"):
            _counts(f"attributions.{key}", getattr(self, key))
        for key in ("params", "metric_params"):
            for name, table in getattr(self, key).items():
                require(isinstance(table, dict), f"attributions.{key}.{name}", "a table", table)


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
# what a study's grid sets per cell: a model's `set` table may not touch these
CELL_KEYS = ("dataset", "model", "model_params", "seed", "study")


def folder_name(value: str, key: str) -> None:
    ok = isinstance(value, str) and bool(value) and set(value) <= _NAME_CHARS and not value.startswith(".")
    require(ok, key, "a folder name of letters, digits, '-', '_' and '.'", value)


def _seeds(key: str, seeds: tuple) -> None:
    for s in seeds:
        require(s >= 0, key, "seeds >= 0", s)
    require(len(set(seeds)) == len(seeds), key, "free of repeats", list(seeds))


@dataclass(frozen=True)
class StudyModel:
    """One model of a study's grid: a label (its folder name), a registered model and its params.

    `train` sets training fields over the study's [train] table; `set` holds further config
    overrides for this model's cells, dotted keys as `--set` takes them (e.g.
    {"attributions.subset" = {"*" = 20}}), never a grid key (dataset, model, seed, ...);
    `seeds` replaces the study's seeds for this model (e.g. fewer for a costly one).
    """

    label: str
    model: str
    model_params: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    set: dict = field(default_factory=dict)
    seeds: Annotated[tuple[int, ...], SEED] = ()

    def __post_init__(self) -> None:
        folder_name(self.label, "study.models.label")
        _seeds(f"study.models.seeds ({self.label})", self.seeds)
        for key in self.set:
            require(key.split(".")[0] not in CELL_KEYS and key != "train", f"study.models.set ({self.label})",
                    "free of the grid's keys (" + ", ".join(CELL_KEYS) + "; training goes in `train`)", key)


@dataclass(frozen=True)
class StudyConfig:
    """A grid of (dataset, model, training seed), each cell run with the config's methods (bench.study).

    name: the study's folder name (default: the preset's name). datasets: default the
    config's `dataset`. chunk: errors per explain unit (None: one unit per method and cell,
    which is exactly what a plain run does). threads: torch threads of every train and explain
    unit, and the CPUs a Ray task asks for; fixed so that a unit computes the same numbers under
    any executor (a gradient solver's iterates differ in the last digits between 1 and 2 threads).
    only: run just these cells, each named "<label>", "<label>-seed<k>" or "<dataset>/<label>-seed<k>".
    pin_weights: with --publish, copy each cell's checkpoint into leaderboards/weights/ as a plain
    run does; false keeps only their sha256 and training config in the boards' provenance (a
    grid of many models would add hundreds of MB to the repository).
    rows: the row kinds every (model, seed) explains, one cell each (bench.config.ROWS; empty:
    the config's `rows`): e.g. ["errors", "common"] explains each model's own errors and the
    common image set with one trained checkpoint; a non-error kind's folder is `<cell>/<rows>/`.
    pin_dtype: how `bench train --pin` stores each checkpoint: "float32" (as trained) or
    "float16" (half the repository's bytes; loaded back into float32, and its recorded test
    accuracy is the rounded weights' own: bench.publish.pin_weights).
    """

    models: tuple[StudyModel, ...] = ()
    seeds: Annotated[tuple[int, ...], SEED] = (0,)
    datasets: tuple[str, ...] = ()
    name: str = ""
    chunk: Annotated[int | None, COUNT] = None
    threads: Annotated[int, Range("[1, 1024]")] = 1
    only: tuple[str, ...] = ()
    pin_weights: bool = True
    rows: tuple[str, ...] = ()
    pin_dtype: str = "float32"

    def __post_init__(self) -> None:
        require(self.pin_dtype in ("float32", "float16"), "study.pin_dtype", "float32 | float16", self.pin_dtype)
        for r in self.rows:
            require(r in ROWS, "study.rows", "a list of " + " | ".join(ROWS), list(self.rows))
        require(len(set(self.rows)) == len(self.rows), "study.rows", "free of repeats", list(self.rows))
        require(len(self.models) >= 1, "study.models", "a non-empty list of {label, model, ...} tables",
                list(self.models))
        labels = [m.label for m in self.models]
        dup = next((x for x in labels if labels.count(x) > 1), None)
        require(dup is None, "study.models", "labelled uniquely (label appears twice)", dup)
        require(len(self.seeds) >= 1, "study.seeds", "a non-empty list of seeds", list(self.seeds))
        _seeds("study.seeds", self.seeds)
        require(len(set(self.datasets)) == len(self.datasets), "study.datasets", "free of repeats",
                list(self.datasets))
        if self.name:
            folder_name(self.name, "study.name")
        require(self.chunk is None or self.chunk >= 1, "study.chunk", ">= 1", self.chunk)
        require(self.threads >= 1, "study.threads", ">= 1", self.threads)


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on."""

    preset: str = "default"
    dataset: str = "mnist"
    model: str = "cnn"
    model_params: dict = field(default_factory=dict)
    seed: Annotated[int, SEED] = 0
    device: str = "auto"
    limit: Annotated[int | None, COUNT] = None
    # which test images a board explains: "errors" (the misclassified ones, every board's rows) or
    # "correct" (a fixed stratified sample of n_correct correctly classified ones: bench.error_set)
    rows: str = "errors"
    n_correct: Annotated[int, Range("[10, 10000]")] = 100
    out: str | None = None  # root folder; default runs/ (leaderboards/ with publish)
    publish: bool = False  # write leaderboards/<dataset>/<model>/ and pin the weights (bench.publish)
    force: bool = False  # publish from a dirty checkout anyway
    cache_dir: str = "~/.cache/bench"
    retrain: bool = False  # ignore the shipped reference weights (leaderboards/weights): train here
    data_dir: str | None = None
    store: str | None = None  # SQLite run store; default <cache_dir>/runs/<dataset>/<model>.sqlite
    n_bootstrap: Annotated[int, Range("[1, 100000]")] = 1000  # resamples per interval
    n_figure: Annotated[int, Range("[0, 1000]")] = 8
    plugins: tuple[str, ...] = ()  # modules or .py files that register entries (bench.plugins)
    train: TrainConfig = field(default_factory=TrainConfig)
    counterfactuals: CounterfactualConfig = field(default_factory=CounterfactualConfig)
    attributions: AttributionConfig = field(default_factory=AttributionConfig)
    study: StudyConfig | None = None  # a [study] table makes `bench run` run a study (bench.study)

    def __post_init__(self) -> None:
        require(self.limit is None or self.limit >= 1, "limit", ">= 1", self.limit)
        require(self.rows in ROWS, "rows", " | ".join(ROWS), self.rows)
        require(self.n_bootstrap >= 1, "n_bootstrap", ">= 1", self.n_bootstrap)
        require(self.n_figure >= 0, "n_figure", ">= 0", self.n_figure)
        require(self.seed >= 0, "seed", ">= 0", self.seed)
        require(self.device == "auto" or self.device == "cpu" or _is_cuda(self.device), "device",
                "auto | cpu | cuda[:N]", self.device)
        require(bool(self.cache_dir.strip()), "cache_dir", "a folder", self.cache_dir)
        require(isinstance(self.model_params, dict), "model_params", "a table", self.model_params)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def store_path(self) -> Path:
        """The SQLite run store: `store`, else `<cache_dir>/runs/<dataset>/<model>.sqlite`."""
        return Path(self.store).expanduser() if self.store else stores_root(self.cache_dir) / self.dataset / f"{self.model}.sqlite"


def stores_root(cache_dir: str | None = None) -> Path:
    """Where the default run stores live: `<cache_dir>/runs/` (`bench runs` lists them)."""
    return Path(cache_dir or RunConfig.cache_dir).expanduser() / "runs"


def _is_cuda(device: str) -> bool:
    head, sep, index = device.partition(":")
    return head == "cuda" and (not sep or index.isdigit())


def make_config(preset: str = "default", overrides: list[str] = (), **cli: Any) -> RunConfig:
    """Preset + `--set key=value` overrides + explicit CLI options (None = not given)."""
    table = load_preset(preset)
    table.setdefault("preset", Path(preset).stem if preset.endswith(".toml") else preset)  # `bench config` output keeps its own
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        set_dotted(table, key.strip(), parse_value(text.strip()))
    for key, value in cli.items():
        if value is not None:
            set_dotted(table, key, value)
    return build(RunConfig, table)
