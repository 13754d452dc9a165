"""Preset files as TOML: reading them (`extends`, `--set` values; every fault one ConfigError line)
and writing a config back (`bench config`, provenance's reproduce command).

bench.config builds a RunConfig from what this reads; this module knows nothing of RunConfig.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from bench.contract.params import ConfigError


def parse_value(text: str) -> Any:
    """Parse the right side of `--set k=v` as a TOML value; bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_dotted(table: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = table
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a table")
    node[parts[-1]] = value


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("bench.presets").iterdir()
                  if p.name.endswith(".toml"))


def load_preset(name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The table of a preset shipped in bench/presets, or of a TOML file path.

    `extends = "base"` merges this preset over `base` (a name or a path); a cycle of extends,
    a file that is not UTF-8 or not TOML is one ConfigError naming the file.
    """
    path = Path(name)
    if name.endswith(".toml") and path.exists():
        where, key = str(path), str(path.resolve())
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"preset {name!r} cannot be read ({e.strerror or e})") from None
    else:
        res = resources.files("bench.presets") / f"{name}.toml"
        if not res.is_file():
            raise ConfigError(f"unknown preset {name!r} (known: {', '.join(preset_names())})")
        where, key, raw = f"bench/presets/{name}.toml", f"preset:{name}", res.read_bytes()
    if key in _seen:
        chain = " -> ".join([*_seen, key]).replace("preset:", "")
        raise ConfigError(f"preset {name!r} extends itself through a cycle ({chain}); remove one `extends` line")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"preset {where} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
                          "save it as UTF-8") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"preset {name!r} is not valid TOML: {e}") from None
    base = table.pop("extends", None)
    if base is not None:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"preset {where}: extends must be a preset name or .toml path, got {base!r}")
        if base.endswith(".toml") and not Path(base).is_absolute() and path.exists() and not Path(base).exists():
            base = str(path.parent / base)  # a path relative to the extending file
        merged = load_preset(base, (*_seen, key))
        _deep_merge(merged, table)
        table = merged
    return table


def _deep_merge(into: dict, other: dict) -> None:
    """Merge a preset over the one it extends; an explicitly empty table replaces (clears)."""
    for k, v in other.items():
        if isinstance(v, dict) and v and isinstance(into.get(k), dict):
            _deep_merge(into[k], v)
        else:
            into[k] = v


def to_toml(cfg) -> str:
    """The config as a TOML preset file: fed back with `--preset file.toml` it gives the same RunConfig.

    Unset values (None) are left out (their default is None); tables become [section] headers.
    """
    return _toml_table(cfg.to_dict(), "")


def _toml_table(table: dict, prefix: str) -> str:
    lines, subtables = [], []
    for k, v in table.items():
        if isinstance(v, dict) and v:
            subtables.append((k, v))
        elif v is not None:
            lines.append(f"{_toml_key(k)} = {toml_value(v)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for k, v in subtables:
        name = f"{prefix}{_toml_key(k)}"
        direct = any(x is not None and not (isinstance(x, dict) and x) for x in v.values())
        out += (f"\n[{name}]\n" if direct else "") + _toml_table(v, name + ".")
    return out


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else toml_value(key)


def toml_value(v: Any) -> str:
    """A value as TOML (inline tables and arrays, quoted keys where needed), as presets and --set read it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and abs(v) != float("inf") else ("nan" if v != v else "inf" if v > 0 else "-inf")
    if isinstance(v, str):
        escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v)
        return f'"{escaped}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    raise ConfigError(f"no TOML form for {type(v).__name__} {v!r}")
