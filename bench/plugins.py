"""Plugins named in a config (`plugins = ["my_solver.py", "my_package.metrics"]`), imported before validation.

A plugin is a module (a .py file path or an importable dotted name) whose decorators register
entries by name (`@register_solver("name")` from bench.contract). Installed packages can instead
declare each entry point, `name = "package.module:Object"`, in the groups bench.solvers,
bench.attributions, bench.cf_metrics, bench.attr_metrics, bench.models or bench.datasets: the
registries list them without importing them, and import the module when the entry is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from bench.contract.params import ConfigError


def load_plugins(names: tuple[str, ...] | list[str]) -> list[str]:
    """Import each plugin once; returns their module names. A failure is one ConfigError line."""
    loaded = []
    for name in names:
        try:
            loaded.append(_load(name))
        except ConfigError:
            raise
        except SystemExit as e:  # sys.exit() at import time: the plugin, not bench, decided to stop
            raise ConfigError(f"plugins: {name!r} called sys.exit({e.code!r}) while being imported; a plugin "
                              "must only register entries") from None
        except Exception as e:  # noqa: BLE001 - any import failure is the user's plugin: say which
            first = str(e).splitlines()[0] if str(e) else ""
            raise ConfigError(f"plugins: cannot import {name!r}: {type(e).__name__}: {first}") from None
    return loaded


def _load(name: str) -> str:
    if not name.endswith(".py"):
        importlib.import_module(name)
        return name
    path = Path(name).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"plugins: no such file {name!r}")
    module = f"bench_plugin_{path.stem}"
    if module in sys.modules and getattr(sys.modules[module], "__file__", None) == str(path):
        return module
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[module]
        raise
    return module
