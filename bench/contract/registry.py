"""One registry pattern for datasets, models, solvers and metrics.

Entries are *declared* cheaply (name -> "module:attr" plus a one-line summary) so that
`bench list` and `python -m bench --help` never import torch or TensorFlow; the module is
imported the first time the entry is used. The module itself then registers the object
with the `register` decorator, and the declaration and the decorator must agree.
Third-party packages add entries through the entry-point group `bench.<kind>`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable


class RegistryError(ValueError):
    """A registry name is unknown, taken twice, or its module does not provide it."""


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:attribute"
    summary: str
    extra: str = ""  # the optional dependency group it needs (pip install "bench-xai[<extra>]")


class Registry:
    """Names -> lazily imported objects, for one kind of thing ("solver", "metric", ...)."""

    def __init__(self, kind: str, declared_in: str | None = None) -> None:
        self.kind = kind
        self.group = f"bench.{kind}s"
        self.declared_in = declared_in  # the module whose import declares the built-in entries
        self._declared: dict[str, Entry] = {}
        self._loaded: dict[str, Any] = {}
        self._plugins_scanned = False
        self.decorated: dict[str, str] = {}  # name -> target of every entry its decorator registered
        self._declarations_loaded = declared_in is None

    def _load_declarations(self) -> None:
        if not self._declarations_loaded:
            self._declarations_loaded = True
            importlib.import_module(self.declared_in)

    # -- declaring and registering -------------------------------------------------
    def declare(self, name: str, target: str, summary: str, extra: str = "") -> None:
        """Declare `name` as living at `target` ("module:attr") without importing it.

        `extra` names the optional dependency group the entry needs (e.g. "alibi").
        """
        if name in self._declared and self._declared[name].target != target:
            raise RegistryError(f"{self.kind} {name!r} is declared twice")
        self._declared[name] = Entry(name, target, summary, extra)

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: register the decorated class or function under `name`."""

        def deco(obj: Any) -> Any:
            self._load_declarations()
            if name in self._loaded and self._loaded[name] is not obj:
                raise RegistryError(f"{self.kind} {name!r} is registered twice")
            module = getattr(obj, "__module__", "?")
            qual = getattr(obj, "__qualname__", getattr(obj, "__name__", "?"))
            target = f"{module}:{qual}"
            entry = self._declared.get(name)
            if entry is None:
                doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
                self._declared[name] = Entry(name, target, doc[0] if doc else "")
            elif entry.target != target:
                raise RegistryError(
                    f"{self.kind} {name!r} is declared at {entry.target} but {target} "
                    "registers it too"
                )
            self._loaded[name] = obj
            self.decorated[name] = target
            try:
                obj.registry_name = name
            except (AttributeError, TypeError):
                pass
            return obj

        return deco

    # -- lookup ----------------------------------------------------------------------
    def _scan_plugins(self) -> None:
        self._load_declarations()
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        for ep in metadata.entry_points(group=self.group):
            if ep.name not in self._declared:
                self._declared[ep.name] = Entry(ep.name, ep.value, f"(plugin {ep.value})")

    def names(self) -> list[str]:
        self._scan_plugins()
        return list(self._declared)

    def entries(self) -> list[Entry]:
        self._scan_plugins()
        return list(self._declared.values())

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def check(self, name: str) -> str:
        """Return `name` if known, else raise with close-match suggestions."""
        if name in self.names():
            return name
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"
        )

    def entry(self, name: str) -> Entry:
        """The declaration of `name` (no import)."""
        self.check(name)
        return self._declared[name]

    def get(self, name: str) -> Any:
        """Import (once) and return the object registered as `name`."""
        self.check(name)
        if name not in self._loaded:
            module_name, _, attr = self._declared[name].target.partition(":")
            module = importlib.import_module(module_name)
            obj = module
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._loaded.setdefault(name, obj)
            try:
                obj.registry_name = name
            except (AttributeError, TypeError):
                pass
        return self._loaded[name]


# The registries. Each one's built-in entries are declared (name -> module, no import) in the
# package named here, imported on first use; a plugin registers with the decorator alone.
DATASETS = Registry("dataset", "bench.data")
MODELS = Registry("model", "bench.models")
SOLVERS = Registry("solver", "solvers")
ATTRIBUTIONS = Registry("attribution", "solvers")
CF_METRICS = Registry("cf_metric", "metrics")
ATTR_METRICS = Registry("attr_metric", "metrics")
