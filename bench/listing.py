"""What `bench list` and `bench runs` print: the registries, every parameter with its range, past runs.

The group listings import no torch (each package declares its built-in entries without importing
them); `bench list <entry>` imports that entry's module to read its parameters.
"""

from __future__ import annotations


def cmd_list(what: str) -> int:
    from bench.data import DATASETS
    from bench.models import MODELS
    from bench.toml_io import preset_names
    from bench.validate import extra_installed, install_hint
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    groups = {"datasets": DATASETS, "models": MODELS, "solvers": SOLVERS, "attributions": ATTRIBUTIONS,
              "cf_metrics": CF_METRICS, "attr_metrics": ATTR_METRICS}
    if what == "config" or any(what in reg for reg in groups.values()):
        return _list_params(what, groups)
    if what not in ("all", "presets", *groups):
        raise ValueError(f"unknown list {what!r} (all | presets | {' | '.join(groups)} | config | an entry's "
                         "name, e.g. gradient)")
    if what in ("all", "presets"):
        print("presets:\n" + "\n".join(f"  {n}" for n in preset_names()))
    for title, reg in groups.items():
        if what in ("all", title):
            print(f"{title}:")
            for e in reg.entries():
                missing = e.extra and not extra_installed(e.extra)
                note = f"UNAVAILABLE (needs [{e.extra}]: {install_hint(e.extra)}) " if missing else ""
                print(f"  {e.name:<22} {note}{e.summary}")
    return 0


def _list_params(what: str, groups: dict) -> int:
    """`bench list <entry>` / `bench list config`: every parameter with its default and allowed range.

    This imports the entry's module (torch): the group listings stay light.
    """
    import dataclasses
    import typing

    from bench.contract.params import _strip, range_of, ranges
    from bench.validate import config_params

    def show(prefix: str, rows: list[tuple[str, object, object, object]]) -> None:
        for name, hint, default, rng in rows:
            kind = getattr(_strip(hint), "__name__", str(_strip(hint))).replace("typing.", "")
            allowed = f"  allowed {rng}" if rng is not None else ""
            print(f"  {prefix}{name:<24} {kind:<8} default {default!r}{allowed}")

    def dataclass_rows(cls) -> list:
        hints = typing.get_type_hints(cls, include_extras=True)
        return [(n, hints[n], d, r) for n, (d, r) in ranges(cls).items()
                if not dataclasses.is_dataclass(_strip(hints[n]))]

    if what == "config":
        from bench.config import AttributionConfig, CounterfactualConfig, RunConfig, StudyConfig, TrainConfig

        print("config (bench config prints a resolved one):")
        for prefix, cls in (("", RunConfig), ("train.", TrainConfig), ("counterfactuals.", CounterfactualConfig),
                            ("attributions.", AttributionConfig), ("study.", StudyConfig)):
            show(prefix, dataclass_rows(cls))
        return 0
    for reg in groups.values():
        if what not in reg:
            continue
        obj = reg.get(what)
        print(f"{reg.kind} {what}: {reg.entry(what).summary}")
        if isinstance(obj, type) and hasattr(obj, "Params"):
            show("", dataclass_rows(obj.Params))
        elif callable(obj):  # a metric, model builder or dataset loader: what a config may set
            hints = typing.get_type_hints(obj, include_extras=True)
            show("", [(p.name, hints.get(p.name, object), p.default, range_of(hints.get(p.name)))
                      for p in config_params(obj, reg.kind).values()])
    return 0


def cmd_runs(cache_dir: str | None, store: str | None) -> int:
    """One line per recorded run, oldest first: time, dataset/model, errors, seconds, folder, status."""
    import time
    from pathlib import Path

    from bench.config import stores_root
    from bench.store import read_runs

    root = stores_root(cache_dir)
    paths = [Path(store)] if store else sorted(root.glob("*/*.sqlite"))
    if store and not Path(store).expanduser().is_file():
        raise FileNotFoundError(f"--store {store}: no such file")
    runs = sorted((r for p in paths for r in read_runs(p)), key=lambda r: r["started"])
    if not runs:
        print(f"no runs recorded in {store or root}")
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"]))
        print(f"{when}  {r['dataset']}/{r['model']:<12} {r['n_errors']:>5} errors {r['seconds']:>8.0f} s  "
              f"{r['folder']}  {r['status']}")
    return 0
