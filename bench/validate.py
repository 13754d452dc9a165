"""Everything a run could get wrong, checked before any data is loaded or any model trained.

Every error is one line (the registries' RegistryError or a ConfigError naming the key);
the CLI turns them into exit code 2. Value ranges of the config's own fields are checked
when it is built (bench/config.py); each entry's Params check theirs in `__post_init__`.
Nothing here writes a file.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import typing
from pathlib import Path

from bench import board
from bench.config import RunConfig
from bench.contract.params import ConfigError

# An optional dependency group (pyproject.toml's extras) -> the top-level modules it installs.
EXTRA_MODULES = {"alibi": ("alibi", "tensorflow"), "ray": ("ray",)}


def extra_installed(extra: str) -> bool:
    """Whether the modules of `extra` are importable (found, not imported: no TensorFlow start-up)."""
    return all(importlib.util.find_spec(m) is not None for m in EXTRA_MODULES.get(extra, (extra,)))


def install_hint(extra: str) -> str:
    return f'pip install "bench-xai[{extra}]" (in a checkout: pip install -e ".[{extra}]")'


def validate(cfg: RunConfig, extras: bool = True) -> None:
    """Every name, parameter table, file and device of the config, checked before any work.

    `extras=False` skips the check that the optional extras of the methods it names are
    installed (`bench train` uses no method).

    Raises the registries' and Params' one-line errors (unknown name with suggestions, unknown
    parameter, wrong type, out-of-range value), a ConfigError for a missing extra, a missing
    data folder, a file that is not a run store, or a CUDA device this machine lacks. A study
    (`cfg.study`) has every cell checked the same way; an error names the cell.
    """
    _validate_run(cfg, extras)
    if extras and not cfg.counterfactuals.solvers and not cfg.attributions.methods:  # (train runs no method)
        raise ConfigError("counterfactuals.solvers and attributions.methods are both empty: nothing to run; name "
                          "at least one solver or attribution method (bench list solvers, bench list attributions)")
    if cfg.study is not None:
        from bench.study.cells import cells, study_name

        study_name(cfg)
        for cell in cells(cfg):
            try:
                _validate_run(cell.cfg, extras)
            except ValueError as e:
                raise type(e)(f"study cell {cell.key}: {e}") from None


def _validate_run(cfg: RunConfig, extras: bool) -> None:
    """validate() of one run's config (a plain run, or one cell of a study)."""
    from bench.plugins import load_plugins

    load_plugins(cfg.plugins)  # their entries must be registered before the names are checked
    from bench.contract.metrics import NEEDS
    from bench.data import DATASETS
    from bench.models import MODELS
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    for need in cfg.attributions.subset_by_need:
        if need not in NEEDS:
            raise ConfigError(f"unknown key attributions.subset_by_need.{need} (a metric need: {', '.join(NEEDS)})")
    DATASETS.get(cfg.dataset)
    _model_params(cfg.model, MODELS.get(cfg.model), cfg.model_params)
    for registry, section in ((SOLVERS, board.COUNTERFACTUALS.stem), (ATTRIBUTIONS, board.ATTRIBUTIONS.stem)):
        task = getattr(cfg, section)
        names = task.solvers if registry is SOLVERS else task.methods
        for name in names:
            extra = registry.entry(name).extra
            if extras and extra and not extra_installed(extra):
                raise ConfigError(f"{section}: {registry.kind} {name!r} needs the optional extra [{extra}]: "
                                  f"{install_hint(extra)}, or leave it out")
        for name in (*names, *task.params):  # a parameter table of an entry not run is still checked
            _entry_params(f"{section}.params", name, registry.get(name), task.params.get(name, {}))
        for name in task.subset:
            if name != "*":
                registry.check(name)
    for name in cfg.counterfactuals.metrics:
        CF_METRICS.get(name)
    for name in (*cfg.attributions.metrics, *cfg.attributions.metric_subset):
        ATTR_METRICS.get(name)
    for name, table in cfg.attributions.metric_params.items():
        _call_params(f"attributions.metric_params.{name}", ATTR_METRICS.get(name), table, ATTR_METRICS.kind)
    _mask_data(cfg)
    _common_set(cfg)
    _files(cfg)
    _device(cfg.device)
    from bench.publish import refuse_unpublishable

    refuse_unpublishable(cfg)


def _mask_data(cfg: RunConfig) -> None:
    """Metrics that score against a ground-truth mask need a built-in dataset that has one.

    (A plugin dataset is checked when it is loaded, before any training: bench.cell.refuse_mask_metrics.)
    """
    from bench.contract.registry import DATASETS
    from bench.data import MASKED
    from bench.tasks.for_run import missing_mask

    builtin = DATASETS.entry(cfg.dataset).target.startswith("bench.data")
    if cfg.dataset not in MASKED and builtin and (msg := missing_mask(cfg)):
        raise ConfigError(msg)


def _common_set(cfg: RunConfig) -> None:
    """rows='common' needs a committed common image set for every dataset the run or study explains."""
    if cfg.rows != "common":
        return
    from bench.data.common import available

    for dataset in (cfg.study.datasets if cfg.study and cfg.study.datasets else (cfg.dataset,)):
        if dataset not in available():
            raise ConfigError(f"rows='common': dataset {dataset!r} has no common image set (sets: "
                              f"{', '.join(available())}; bench/data/common.py); use rows='errors' or 'correct'")


def _entry_params(where: str, name: str, cls, table: dict) -> None:
    """Build the entry's Params (types, ranges); errors are prefixed with the full key."""
    try:
        cls.param_dict(**dict(table))
    except ConfigError as e:
        msg, unknown = str(e), "unknown key "  # "unknown key gradient.lrr", "gradient.lr: expected ..."
        if msg.startswith(f"{name}."):
            msg = f"{where}.{msg}"
        elif msg.startswith(f"{unknown}{name}."):
            msg = f"{unknown}{where}.{msg[len(unknown):]}"
        else:  # a Params range check: "lr must be > 0, got -1.0"
            msg = f"{where}.{name}.{msg}"
        raise ConfigError(msg) from None


def config_params(fn, kind: str) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a metric, model builder or dataset loader that a config sets, by name.

    The harness passes the others itself: a metric's first two (the batch and the context), a
    model builder's `n_classes` (the dataset's class count, wherever it sits), a loader's `data_dir`.
    """
    params = list(inspect.signature(fn).parameters.values())[2 if kind.endswith("metric") else 0:]
    supplied = {"model": ("n_classes",), "dataset": ("data_dir",)}.get(kind, ())
    return {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in supplied}


_BUILT: set = set()  # (model, its params) that built on the meta device in this process


def _model_params(model: str, build_fn, table: dict) -> None:
    """model_params against the builder's parameters; a builder that passes unknown keys on (timm's
    `**timm_kwargs`) is also built once on the meta device (no memory, no weights), so whatever the
    library refuses (an unknown keyword, an unknown architecture) is a one-line error here."""
    if "n_classes" in table:
        raise ConfigError("model_params.n_classes is set by the dataset (its number of classes); leave it out")
    _call_params("model_params", build_fn, table, "model")
    if not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(build_fn).parameters.values()):
        return
    key = (model, repr(sorted(table.items())))
    if key in _BUILT:  # a study's seeds share their model: built once
        return
    import torch

    try:
        with torch.device("meta"):
            build_fn(n_classes=10, **table)  # the class count does not change what the builder accepts
        _BUILT.add(key)
    except Exception as e:  # noqa: BLE001 - the builder's (or its library's) refusal, in one line
        first = (str(e).splitlines() or [""])[0]
        bad = [k for k in table if f"'{k}'" in first]
        close = difflib.get_close_matches(bad[0], config_params(build_fn, "model"), n=1) if bad else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        where = f"unknown key model_params.{bad[0]}{hint}" if bad and "keyword" in first else "model_params"
        shown = ", ".join(f"{k}={v!r}" for k, v in table.items()) or "its defaults"
        raise ConfigError(f"{where}: model {model!r} refuses {shown}: {type(e).__name__}: {first}") from None


def _call_params(where: str, fn, table: dict, kind: str) -> None:
    """Keyword parameters of a function (a metric, a model builder): names, simple types, ranges.

    `kind` (the registry's) says which parameters the harness passes itself (`config_params`).
    A numeric parameter annotated `Annotated[int, Range("[1, 784]")]` is checked against its
    range (finite, inside); any float must be finite. Without a Range, an int parameter whose
    default is >= 1 is a count and must stay >= 1 (a `*_radius` may be 0).
    """
    from bench.contract.params import _strip, check_value

    params = config_params(fn, kind)
    open_ended = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    hints = typing.get_type_hints(fn, include_extras=True)
    for key, value in table.items():
        if key not in params:
            if open_ended:
                continue
            close = difflib.get_close_matches(key, params, n=1)
            known = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(params) or 'none'}"
            raise ConfigError(f"unknown key {where}.{key} ({known})")
        full, default = hints.get(key), params[key].default
        hint = _strip(full)
        if hint in (bool, int, float, str):
            ok = isinstance(value, hint) and not (hint is not bool and isinstance(value, bool))
            ok = ok or (hint is float and isinstance(value, int) and not isinstance(value, bool))
            if not ok:
                raise ConfigError(f"{where}.{key}: expected {hint.__name__}, got {value!r}")
        if hint is tuple and not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}.{key}: expected a list, got {value!r}")
        check_value(f"{where}.{key}", value, full, default)
        if full is not hint:
            continue
        if hint is int and isinstance(default, int) and default >= 1 and not key.endswith("radius") and value < 1:
            raise ConfigError(f"{where}.{key} must be >= 1, got {value!r}")
        if hint is int and key.endswith("radius") and value < 0:
            raise ConfigError(f"{where}.{key} must be >= 0, got {value!r}")


def _files(cfg: RunConfig) -> None:
    """The data folder exists; the run store, if there is one already, is a bench store (read only);
    the output folder can be made (no file in its way, no name too long)."""
    from bench.folders import board_label, check_out
    from bench.store import probe

    if cfg.data_dir is not None and cfg.data_dir != "download" and not cfg.data_dir.startswith("download:"):
        if not Path(cfg.data_dir).expanduser().is_dir():
            raise ConfigError(f"data_dir {cfg.data_dir!r} is not a folder (an IDX directory, or 'download')")
    elif cfg.data_dir is not None and cfg.data_dir.startswith("download:") and not cfg.data_dir[9:].strip():
        raise ConfigError("data_dir 'download:' names no folder: write 'download' (into <cache-dir>/data) or "
                          "'download:<folder>'")
    probe(cfg.store_path)
    check_out(cfg, board_label(cfg))


def _device(name: str) -> None:
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but no CUDA device is available (use cpu or auto)")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
