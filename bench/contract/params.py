"""Parameter tables -> frozen dataclasses: unknown keys and wrong types are one-line errors.

Every registered method's `Params`, and the run configuration, are built with `build`.
A numeric parameter documents its allowed range beside its default, as an annotation:

    lr: Annotated[float, Range("(0, 10]")] = 0.01

`build` refuses NaN and infinities in every float field and a value outside its Range
(before the dataclass is made), naming the key, the range and the default; `bench list
<name>` prints them. Standard library only.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A preset, override or parameter table is malformed (one line, names the key)."""


def _num(text: str) -> float | int:
    text = text.strip()
    if "**" in text:  # "2**32": a power written as such
        base, _, exp = text.partition("**")
        return int(base) ** int(exp)
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text.lower() and "." not in text else value


@dataclasses.dataclass(frozen=True)
class Range:
    """An interval a numeric parameter must lie in, written as in mathematics: "(0, 10]", "[1, 1e6]".

    Both ends are finite (every parameter has an upper bound: an absurd value is refused before
    any work instead of running until killed); NaN and infinities are always refused.
    """

    spec: str

    def __post_init__(self) -> None:
        s = self.spec.strip()
        if len(s) < 5 or s[0] not in "[(" or s[-1] not in "])" or s.count(",") != 1:
            raise ValueError(f"Range {self.spec!r}: write it as [lo, hi], (lo, hi], [lo, hi) or (lo, hi)")
        lo, hi = (_num(t) for t in s[1:-1].split(","))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"Range {self.spec!r}: both ends finite, lo <= hi")
        object.__setattr__(self, "bounds", (lo, hi, s[0] == "(", s[-1] == ")"))

    def __str__(self) -> str:
        return self.spec

    def check(self, key: str, value: Any, default: Any = dataclasses.MISSING) -> None:
        """ConfigError (one line: key, rule, value, range, default) unless `value` is a finite number inside."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        lo, hi, lo_open, hi_open = self.bounds
        tail = f" (allowed {self.spec}" + ("" if default is dataclasses.MISSING else f", default {default!r}") + ")"
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}{tail}")
        if value < lo or (lo_open and value == lo):
            raise ConfigError(f"{key} must be {'>' if lo_open else '>='} {lo}, got {value!r}{tail}")
        if value > hi or (hi_open and value == hi):
            raise ConfigError(f"{key} must be {'<' if hi_open else '<='} {hi}, got {value!r}{tail}")


def range_of(hint: Any) -> Range | None:
    """The Range an `Annotated[...]` hint carries, or None."""
    if typing.get_origin(hint) is typing.Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Range)), None)
    return None


def check_value(key: str, value: Any, hint: Any, default: Any = dataclasses.MISSING) -> None:
    """A value against its hint's Range (each element of a tuple); a float is finite even without one."""
    rng = range_of(hint)
    values = value if isinstance(value, (tuple, list)) else (value,)
    for v in values:
        if rng is not None:
            rng.check(key, v, default)
        elif isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{key} must be a finite number, got {v!r}")


def _strip(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check/convert a TOML value against a dataclass field's type hint."""
    hint = _strip(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(v, typing.get_args(hint)[0], where) for v in value)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{where} must be a finite number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    raise ConfigError(f"{where}: unsupported type {hint}")


def build(cls: type, table: dict, where: str = "") -> Any:
    """Build dataclass `cls` from a table; unknown keys and wrong types are ConfigErrors."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = set(fields)
    unknown = sorted(set(table) - names)
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown key {where + '.' if where else ''}{unknown[0]}{hint}")
    kwargs = {k: _coerce(v, hints[k], f"{where + '.' if where else ''}{k}") for k, v in table.items()}
    for k, v in kwargs.items():
        check_value(f"{where + '.' if where else ''}{k}", v, hints[k], fields[k].default)
    return cls(**kwargs)


def ranges(cls: type) -> dict[str, tuple[Any, Range | None]]:
    """name -> (default, Range or None) of every field of dataclass `cls` (`bench list` prints them)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out[f.name] = (default, range_of(hints[f.name]))
    return out
