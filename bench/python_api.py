"""The Python API: `bench.run(...)` and `bench.load(...)` return `Results` of pandas DataFrames.

    import bench
    r = bench.run(preset="tiny", limit=3)        # a run, written under runs/ like the CLI's
    r.counterfactuals                             # the leaderboard table (one row per method)
    r.instances                                   # every per-instance score, long format
    bench.load("leaderboards/mnist/cnn")          # a published board read back
    bench.load("~/.cache/bench/runs/mnist/cnn.sqlite")   # everything a run store holds

Long format: one row per (task, method, mode, test_index, metric) with its `value`; the
stored per-instance records (queries, seconds, success, labels) are `r.records`. `Results`
and `load` live in bench.results, which runs nothing: what a run writes reads results through
it without importing the runner back.
"""

from __future__ import annotations

from bench.results import Results, load

__all__ = ["Results", "load", "run"]


def run(preset: str = "default", *, progress: bool = False, **overrides) -> Results:
    """Run bench as `python -m bench run` would, and return its results.

    Args:
        preset: a shipped preset name or a path to a .toml file.
        progress: show progress bars on stderr.
        **overrides: config fields, e.g. `limit=3`, `seed=1`, `out="my_runs"`,
            `counterfactuals={"solvers": ["gradient"]}`. A dict sets the fields it names
            inside its section; a field that is itself a table (params, subset) is replaced.
    Returns:
        Results read back from the run's folder, with `summary` (phases, seconds, paths).
    """
    from bench.config import make_config
    from bench.runner import run as run_cfg
    from bench.validate import validate

    cfg = make_config(preset, **_flatten(overrides))
    validate(cfg)  # the Python door: every name, value, file and device, before any work
    summary = run_cfg(cfg, progress=progress)
    results = load(summary["folder"])
    results.summary = summary
    return results


def _flatten(overrides: dict, prefix: str = "") -> dict:
    """{section: {field: value}} -> {"section.field": value}, for RunConfig's sections only (not model_params)."""
    from bench.config import RunConfig

    sections = {f for f, v in RunConfig.__dataclass_fields__.items()
                if isinstance(v.default_factory, type) and f != "model_params"}
    out = {}
    for k, v in overrides.items():
        if not prefix and k in sections and isinstance(v, dict):
            out.update(_flatten(v, f"{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out
