"""The plugin contract: everything a solver, attribution method, metric or model needs from bench.

    from bench.contract import CounterfactualSolver, CFResult, register_solver

A plugin imports this package and nothing else of bench; `solvers/` and `metrics/` do the
same (a test checks it). It imports only the standard library, numpy and torch, and those
lazily: `from bench.contract import SOLVERS` (the registries) imports no torch, so `bench list`
and `--help` stay light.

- registries: DATASETS, MODELS, SOLVERS, ATTRIBUTIONS, CF_METRICS, ATTR_METRICS, Registry,
  RegistryError, and the decorators register_solver / register_attribution / register_model /
  register_dataset, each taking the entry's name (a metric registers with `metric(...)`).
- the model, as methods see it: Oracle, GradientRefused.
- results: CFResult, AttrResult.
- ops: total_variation (the pinned TV definition, shared by the gradient solver and the tv metric).
- models: Normalized (the [0,1]-pixel wrapper a model builder returns), weights_hash;
  keep_freed_memory for worker processes (glibc heap thresholds).
- parameters: build (table -> frozen dataclass), ConfigError, NoParams, Range (a numeric
  parameter's allowed interval, annotated beside its default: `Annotated[float, Range("(0, 1]")]`).
- base types: Method, CounterfactualSolver, AttributionMethod; metric batches CFBatch,
  AttrBatch, the run-wide MetricContext and the `metric` decorator.
- captum-style attribution: CaptumAdapter (implement `attribute(x, target, contrast)`),
  logit_fn (a captum forward function counted by the oracle), OracleModule (the oracle as an
  nn.Module, for captum methods that hook layers), forward_args (a contrast class as captum's
  additional_forward_args); captum itself is imported by the method, not by the contract.
"""

from __future__ import annotations

import importlib

from bench.contract.registry import DECORATORS

_WHERE = {
    "Registry": "registry", "RegistryError": "registry", "DATASETS": "registry", "MODELS": "registry",
    "SOLVERS": "registry", "ATTRIBUTIONS": "registry", "CF_METRICS": "registry", "ATTR_METRICS": "registry",
    "Oracle": "oracle", "GradientRefused": "oracle",
    "CFResult": "results", "AttrResult": "results",
    "build": "params", "ConfigError": "params", "Range": "params",
    "Method": "methods", "CounterfactualSolver": "methods", "AttributionMethod": "methods", "NoParams": "methods",
    "total_variation": "ops", "Normalized": "models", "weights_hash": "models", "keep_freed_memory": "memory",
    "CFBatch": "metrics", "AttrBatch": "metrics", "MetricContext": "metrics", "metric": "metrics",
    "CaptumAdapter": "captum", "logit_fn": "captum", "OracleModule": "captum", "forward_args": "captum",
}
__all__ = sorted([*_WHERE, *DECORATORS])


def __getattr__(name: str):
    if name in DECORATORS:
        return DECORATORS[name].register
    if name in _WHERE:
        return getattr(importlib.import_module(f"bench.contract.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'bench.contract' has no attribute {name!r}")
