"""One registry pattern for datasets, models, solvers and metrics.

A built-in entry is written once: its declaration in its package's `__init__` (name ->
"module:attr", a one-line summary, the optional extra it needs), so that `bench list` and
`python -m bench --help` name it without importing torch or TensorFlow. Its module is imported
the first time the entry is used; the object there carries a decorator without a name
(`@SOLVERS.register()`), which finds its declaration by the object's own "module:qualname".
A plugin names its entry in the decorator (`@register_solver("mine")`, bench.contract).
Installed packages add entries through the entry-point group `bench.<kind>s`.
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
    target: str  # "package.module:attribute" (an entry point may name a module alone)
    summary: str
    extra: str = ""  # the optional dependency group it needs (pip install "bench-xai[<extra>]")


class Registry:
    """Names -> lazily imported objects, for one kind of thing ("solver", "metric", ...)."""

    def __init__(self, kind: str, declared_in: str | None = None) -> None:
        self.kind = kind
        self.group = f"bench.{kind}s"
        self.declared_in = declared_in  # the package whose import declares the built-in entries
        self._entries: dict[str, Entry] = {}
        self._builtin: set[str] = set()  # the names declare() wrote
        self._loaded: dict[str, Any] = {}
        self._scanned = False

    def _scan(self) -> None:
        """Import the package of declarations, then add the installed plugins' entry points (no import)."""
        if self._scanned:
            return
        self._scanned = True
        if self.declared_in is not None:
            importlib.import_module(self.declared_in)
        for ep in metadata.entry_points(group=self.group):
            self._entries.setdefault(ep.name, Entry(ep.name, ep.value, f"(plugin {ep.value})"))

    # -- declaring and registering -------------------------------------------------
    def declare(self, name: str, target: str, summary: str, extra: str = "") -> None:
        """Declare the built-in `name` as living at `target` ("module:attr") without importing it.

        `extra` names the optional dependency group the entry needs (e.g. "alibi").
        """
        for other in self._entries.values():
            if (other.name == name) != (other.target == target):
                raise RegistryError(f"{self.kind} {name!r} at {target}: {other.name!r} at {other.target} "
                                    "is declared already (one name, one object)")
        self._entries[name] = Entry(name, target, summary, extra)
        self._builtin.add(name)

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        """Decorator: register the decorated class or function.

        A built-in takes no name (its declaration has it). A plugin gives one; its summary is the
        first line of its docstring.
        """

        def deco(obj: Any) -> Any:
            self._scan()
            target = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
            if name is None:
                key = self._declared_name(target)
            elif name in self._builtin:
                raise RegistryError(f"{self.kind} {name!r} is declared in {self.declared_in}: {target} cannot "
                                    "register it by name (a built-in's decorator takes no name)")
            else:
                key, entry = name, self._entries.get(name)
                if entry is not None and entry.target not in (target, target.partition(":")[0]):
                    raise RegistryError(f"{self.kind} {name!r} is registered twice: at {entry.target} and at {target}")
                doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
                self._entries[name] = Entry(name, target, doc[0] if doc else "")
            if key in self._loaded and self._loaded[key] is not obj:
                raise RegistryError(f"{self.kind} {key!r} is registered twice")
            self._loaded[key] = _label(obj, key)
            return obj

        return deco

    def _declared_name(self, target: str) -> str:
        for e in self._entries.values():
            if e.target == target and e.name in self._builtin:
                return e.name
        raise RegistryError(f"{target} registers a {self.kind} without a name, but {self.declared_in or 'no package'} "
                            f"declares none at {target}: declare it there, or name it in the decorator")

    # -- lookup ----------------------------------------------------------------------
    def names(self) -> list[str]:
        self._scan()
        return list(self._entries)

    def entries(self) -> list[Entry]:
        self._scan()
        return list(self._entries.values())

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
        return self._entries[name]

    def get(self, name: str) -> Any:
        """Import (once) and return the object registered as `name`."""
        self.check(name)
        if name not in self._loaded:
            module_name, _, attr = self._entries[name].target.partition(":")
            obj = importlib.import_module(module_name)  # its decorators register what it holds
            if name not in self._loaded:  # an entry point naming an undecorated object
                if not attr:
                    raise RegistryError(f"{self.kind} {name!r}: module {module_name} registers no such entry")
                for part in attr.split("."):
                    obj = getattr(obj, part)
                self._loaded[name] = _label(obj, name)
        return self._loaded[name]


def _label(obj: Any, name: str) -> Any:
    try:
        obj.registry_name = name
    except (AttributeError, TypeError):
        pass
    return obj


# The registries. Each one's built-in entries are declared (name -> module, no import) in the
# package named here, imported on first use; a plugin registers with the decorator alone.
DATASETS = Registry("dataset", "bench.data")
MODELS = Registry("model", "bench.models")
SOLVERS = Registry("solver", "solvers")
ATTRIBUTIONS = Registry("attribution", "solvers")
CF_METRICS = Registry("cf_metric", "metrics")
ATTR_METRICS = Registry("attr_metric", "metrics")
# bench.contract's decorators for plugins: register_solver("name") is SOLVERS.register("name")
DECORATORS = {"register_solver": SOLVERS, "register_attribution": ATTRIBUTIONS,
              "register_model": MODELS, "register_dataset": DATASETS}
