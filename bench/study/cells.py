"""A study's grid: cells of (dataset, model, seed), each an ordinary RunConfig, and their folders.

A cell's config is the study's config with the cell's dataset, model, model params and seed,
its model's `train` table over the study's [train], its model's `set` overrides, and
`study.only` naming the cell itself: run with `bench run`, it reproduces that one cell.
This module imports no torch.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

from bench.config import ConfigError, RunConfig, build, folder_name
from bench.toml_io import set_dotted


@dataclass(frozen=True)
class Cell:
    """One (dataset, model label, seed, row kind) of a study and the run config that explains it."""

    dataset: str
    label: str
    seed: int
    cfg: RunConfig

    @property
    def rows(self) -> str:
        return self.cfg.rows

    @property
    def name(self) -> str:
        """The cell's folder name: `<label>-seed<k>`, plus `/<rows>` unless it explains the model's errors."""
        return f"{self.label}-seed{self.seed}" + ("" if self.rows == "errors" else f"/{self.rows}")

    @property
    def key(self) -> str:
        """The cell's name in the whole study: `<dataset>/<label>-seed<k>`."""
        return f"{self.dataset}/{self.name}"

    def matches(self, item: str) -> bool:
        return item in (self.label, self.name, self.key, f"{self.dataset}/{self.label}")


def study_name(cfg: RunConfig) -> str:
    """The study's folder name: `study.name`, else the preset's name."""
    name = cfg.study.name or cfg.preset
    folder_name(name, "study.name (default: the preset's name)")
    return name


def cells(cfg: RunConfig, *, restrict: bool = True) -> list[Cell]:
    """Every cell of the study of `cfg` (dataset-major, then model, then seed); ConfigError naming the model.

    With `restrict`, only the cells `study.only` names (each item must name one or more cells).
    """
    study = cfg.study
    if study is None:
        raise ConfigError("this config has no [study] table")
    base = cfg.to_dict()
    base.pop("study")
    study_table = dataclasses.asdict(study)
    out = []
    for dataset in study.datasets or (cfg.dataset,):
        for i, m in enumerate(study.models):
            for seed in m.seeds or study.seeds:
                for rows in study.rows or (cfg.rows,):
                    table = copy.deepcopy(base)
                    table.update(dataset=dataset, model=m.model, model_params=copy.deepcopy(m.model_params),
                                 seed=seed, rows=rows)
                    table["train"] = {**table["train"], **m.train}
                    name = f"{dataset}/{m.label}-seed{seed}" + ("" if rows == "errors" else f"/{rows}")
                    try:
                        for key, value in m.set.items():
                            set_dotted(table, key, copy.deepcopy(value))
                        table["study"] = dict(study_table, only=[name])
                        out.append(Cell(dataset, m.label, seed, build(RunConfig, table)))
                    except ConfigError as e:
                        raise ConfigError(f"study.models[{i}] ({m.label}): {e}") from None
    if restrict and study.only:
        for item in study.only:
            if not any(c.matches(item) for c in out):
                known = ", ".join(c.key for c in out[:6]) + (", ..." if len(out) > 6 else "")
                raise ConfigError(f"study.only: {item!r} names no cell of the study (cells: {known})")
        out = [c for c in out if any(c.matches(item) for item in study.only)]
    return out


def reference_cell(cfg: RunConfig) -> dict | None:
    """The config (as a dict) of the cell `cfg` is, derived afresh from its preset; None if it is none.

    `bench.provenance.reproduce_command` compares a cell's config with this, so a cell's
    command is `--preset <study> --set study.only=[...]` plus what was really overridden.
    """
    from bench.config import make_config

    if cfg.study is None or len(cfg.study.only) != 1:
        return None
    try:
        preset = make_config(cfg.preset)
    except ConfigError:
        return None
    if preset.study is None:
        return None
    found = [c for c in cells(preset, restrict=False) if c.matches(cfg.study.only[0])]
    if len(found) != 1:
        return None
    table = found[0].cfg.to_dict()
    table["study"]["only"] = tuple(preset.study.only)
    return table

