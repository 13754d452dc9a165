"""Everything a run could get wrong, checked before any data is loaded or any model trained.

Every error is one line (the registries' RegistryError or a ConfigError naming the key);
the CLI turns them into exit code 2.
"""

from __future__ import annotations

from bench.config import TARGET_MODES as MODES
from bench.config import RunConfig


def validate(cfg: RunConfig) -> None:
    """Every name and parameter table of the config, checked before any data or model is touched.

    Raises the registries' and Params' one-line errors (unknown name with suggestions, unknown
    parameter, wrong type).
    """
    from bench.plugins import load_plugins

    load_plugins(cfg.plugins)  # their entries must be registered before the names are checked
    from bench.api.metrics import NEEDS
    from bench.api.params import ConfigError
    from bench.data import DATASETS
    from bench.models import MODELS
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    for need in cfg.attributions.subset_by_need:
        if need not in NEEDS:
            raise ConfigError(f"unknown key attributions.subset_by_need.{need} (a metric need: {', '.join(NEEDS)})")
    DATASETS.get(cfg.dataset)
    MODELS.get(cfg.model)
    for registry, task in ((SOLVERS, cfg.counterfactuals), (ATTRIBUTIONS, cfg.attributions)):
        names = task.solvers if registry is SOLVERS else task.methods
        for name in (*names, *task.params):  # a parameter table of an entry not run is still checked
            registry.get(name).param_dict(**dict(task.params.get(name, {})))
    for name in cfg.counterfactuals.metrics:
        CF_METRICS.get(name)
    for name in (*cfg.attributions.metrics, *cfg.attributions.metric_params, *cfg.attributions.metric_subset):
        ATTR_METRICS.get(name)
    for mode in cfg.attributions.targets:
        if mode not in MODES:
            raise ValueError(f"unknown attribution target mode {mode!r} ({' | '.join(MODES)})")
