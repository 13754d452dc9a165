"""The plugin contract: everything a solver, attribution method, metric or model needs from bench.

    from bench.contract import CounterfactualSolver, CFResult, register_solver

A plugin imports this package and nothing else of bench; `solvers/` and `metrics/` do the
same (a test checks it). It imports only the standard library, numpy and torch, and those
lazily: `from bench.contract import SOLVERS` (the registries) imports no torch, so `bench list`
and `--help` stay light.

- registries: DATASETS, MODELS, SOLVERS, ATTRIBUTIONS, CF_METRICS, ATTR_METRICS, Registry,
  RegistryError, and the decorators register_solver / register_attribution / register_model /
  register_dataset (a metric registers with `metric(...)`).
- the model, as methods see it: Oracle, GradientRefused.
- results: CFResult, AttrResult.
- ops: total_variation (the pinned TV definition, shared by the gradient solver and the tv metric).
- models: Normalized (the [0,1]-pixel wrapper a model builder returns), weights_hash;
  keep_freed_memory for worker processes (glibc heap thresholds).
- parameters: build (table -> frozen dataclass), ConfigError, NoParams, Range (a numeric
  parameter's allowed interval, annotated beside its default: `Annotated[float, Range("(0, 1]")]`).
- base types: Method, CounterfactualSolver, AttributionMethod; metric batches CFBatch,
  AttrBatch, the run-wide MetricContext and the `metric` decorator.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "Registry": "registry", "RegistryError": "registry", "DATASETS": "registry", "MODELS": "registry",
    "SOLVERS": "registry", "ATTRIBUTIONS": "registry", "CF_METRICS": "registry", "ATTR_METRICS": "registry",
    "Oracle": "oracle", "GradientRefused": "oracle",
    "CFResult": "results", "AttrResult": "results",
    "build": "params", "ConfigError": "params", "Range": "params",
    "Method": "methods", "CounterfactualSolver": "methods", "AttributionMethod": "methods", "NoParams": "methods",
    "total_variation": "ops", "Normalized": "models", "weights_hash": "models", "keep_freed_memory": "memory",
    "CFBatch": "metrics", "AttrBatch": "metrics", "MetricContext": "metrics", "metric": "metrics",
}
_DECORATORS = {"register_solver": "SOLVERS", "register_attribution": "ATTRIBUTIONS",
               "register_model": "MODELS", "register_dataset": "DATASETS"}
__all__ = sorted([*_WHERE, *_DECORATORS])


def __getattr__(name: str):
    if name in _DECORATORS:
        from bench.contract import registry

        return getattr(registry, _DECORATORS[name]).register
    if name in _WHERE:
        return getattr(importlib.import_module(f"bench.contract.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'bench.contract' has no attribute {name!r}")
