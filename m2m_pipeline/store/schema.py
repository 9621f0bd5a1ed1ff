"""Attribute schemas: one a kind of group (``pool_schema.POOL_SCHEMA``, ``prepared.PREPARED_SCHEMA``),
checked when the folder is opened, so a value of the wrong type or range or a missing key is a
one-line M2mError naming the attribute, never a ValueError / KeyError / ZeroDivisionError deep in a
reader. Nesting depth is bounded before any of it is parsed (utils.load_json), so every walk here is
shallow. Plain Python: no zarr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import M2mError

class SchemaError(Exception):
    """``where`` (an attribute path such as ``params.beta``) is not ``expected``."""

    def __init__(self, where: str, expected: str, value: Any = None, *, missing: bool = False):
        super().__init__(where)
        self.where, self.expected, self.value, self.missing = where, expected, value, missing

    def describe(self) -> str:
        if self.missing:
            return f"attribute {self.where} is missing"
        got = json.dumps(self.value, default=str) if not isinstance(self.value, str) else repr(self.value)
        got = got if len(got) <= 40 else got[:37] + "..."
        return f"attribute {self.where} should be {self.expected}, not {got}"


class Spec:
    """One node of a schema: ``check(value, where)`` raises SchemaError or returns None."""

    def check(self, value: Any, where: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Int(Spec):
    def __init__(self, lo: int | None = None, hi: int | None = None):
        self.lo, self.hi = lo, hi

    def check(self, value: Any, where: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) \
                or (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            rng = (f" >= {self.lo}" if self.hi is None else f" in {self.lo}..{self.hi}") if self.lo is not None \
                else (f" <= {self.hi}" if self.hi is not None else "")
            raise SchemaError(where, f"an integer{rng}", value)


class Num(Spec):
    """A finite number (int or float, not bool) in [lo, hi] (``lo_open``/``hi_open``: excluded)."""

    def __init__(self, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                 hi_open: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def check(self, value: Any, where: str) -> None:
        ok = not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(value)
        if ok and self.lo is not None:
            ok = value > self.lo if self.lo_open else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.hi_open else value <= self.hi
        if not ok:
            lo = "" if self.lo is None else f"{'(' if self.lo_open else '['}{self.lo}"
            hi = "" if self.hi is None else f"{self.hi}{')' if self.hi_open else ']'}"
            rng = f" in {lo or '(-inf'}, {hi or 'inf)'}" if lo or hi else ""
            raise SchemaError(where, f"a finite number{rng}", value)


class Str(Spec):
    def __init__(self, choices: tuple[str, ...] | None = None, *, hex_len: int | None = None):
        self.choices, self.hex_len = choices, hex_len

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or (self.choices is not None and value not in self.choices):
            raise SchemaError(where, f"one of {list(self.choices)}" if self.choices else "a string", value)
        if self.hex_len is not None and (len(value) != self.hex_len
                                         or any(c not in "0123456789abcdef" for c in value)):
            raise SchemaError(where, f"{self.hex_len} hex digits", value)


class Const(Spec):
    def __init__(self, value: Any):
        self.value = value

    def check(self, value: Any, where: str) -> None:
        if type(value) is not type(self.value) or value != self.value:
            raise SchemaError(where, json.dumps(self.value), value)


class Bool(Spec):
    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise SchemaError(where, "true or false", value)


class AnyJSON(Spec):
    """Anything JSON holds (its depth is bounded when the file is parsed)."""

    def check(self, value: Any, where: str) -> None:
        return None


class Nullable(Spec):
    def __init__(self, inner: Spec):
        self.inner = inner

    def check(self, value: Any, where: str) -> None:
        if value is not None:
            self.inner.check(value, where)


class ListOf(Spec):
    def __init__(self, item: Spec, *, min_len: int = 0, max_len: int | None = None):
        self.item, self.min_len, self.max_len = item, min_len, max_len

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or len(value) < self.min_len \
                or (self.max_len is not None and len(value) > self.max_len):
            size = (f" of {self.min_len}" if self.max_len == self.min_len else
                    f" of {self.min_len}..{self.max_len}" if self.max_len is not None else
                    f" of at least {self.min_len}" if self.min_len else "")
            raise SchemaError(where, f"a list{size}", value)
        for i, item in enumerate(value):
            self.item.check(item, f"{where}[{i}]")


class DictOf(Spec):
    """A mapping of string keys to ``value`` specs."""

    def __init__(self, value: Spec):
        self.value = value

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise SchemaError(where, "a mapping", value)
        for k, v in value.items():
            self.value.check(v, f"{where}.{k}")


class Fields(Spec):
    """A mapping with ``required`` and ``optional`` keys; ``extra`` (default: refused) checks any
    other key's value."""

    def __init__(self, required: dict[str, Spec], optional: dict[str, Spec] | None = None, *,
                 extra: Spec | None = None):
        self.required, self.optional, self.extra = required, optional or {}, extra

    def check(self, value: Any, where: str) -> None:
        prefix = f"{where}." if where else ""
        if not isinstance(value, dict):
            raise SchemaError(where or "(the attributes)", "a mapping", value)
        for key, spec in self.required.items():
            if key not in value:
                raise SchemaError(prefix + key, "", missing=True)
            spec.check(value[key], prefix + key)
        for key, item in value.items():
            spec = self.required.get(key) or self.optional.get(key)
            if spec is None:
                if self.extra is None:
                    raise SchemaError(prefix + str(key), "no such key (unknown)", item)
                spec = self.extra
            if key not in self.required:
                spec.check(item, prefix + str(key))


def check_schema(path: Path, attrs: Any, schema: Spec, what: str) -> None:
    """Refuse attributes ``attrs`` of the ``what`` at ``path`` that do not fit ``schema``."""
    try:
        schema.check(attrs, "")
    except SchemaError as exc:
        raise M2mError(f"{what} {path} has bad attributes: {exc.describe()}; it is damaged or was written "
                       f"by something else: delete it and write it again") from None


__all__ = ["AnyJSON", "Bool", "Const", "DictOf", "Fields", "Int", "ListOf", "Nullable", "Num",
           "SchemaError", "Spec", "Str", "check_schema"]
