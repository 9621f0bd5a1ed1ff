"""Value checks that name their key: each check takes (key, value) and returns the (normalised) value,
or raises a one-line M2mError such as ``presets.digits.batch_size must be an int >= 2, got 0``.
The params.yaml schema (params.py) is built from them. Standard library only."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from .errors import M2mError

Check = Callable[[str, Any], Any]


def fail(key: str, what: str, value: Any) -> M2mError:
    return M2mError(f"{key} must be {what}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)   # YAML `true` is an int in Python


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _in_bounds(v: float, lo, hi, lo_open, hi_open) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    if hi is not None and (v >= hi if hi_open else v > hi):
        return False
    return True


def int_in(lo: int | None = None, hi: int | None = None, *, nullable: bool = False) -> Check:
    what = " ".join(filter(None, ["an int", _bounds(lo, hi, False, False)])) + (" or null" if nullable else "")

    def check(key: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not _is_int(value) or not _in_bounds(value, lo, hi, False, False):
            raise fail(key, what, value)
        return int(value)
    return check


def number_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
              hi_open: bool = False) -> Check:
    """A finite real number within bounds. An int is accepted (lr: 1); so is a string that reads
    as a number ("1e-4": YAML 1.1 reads an exponent without a dot as a string)."""
    what = " ".join(filter(None, ["a finite number", _bounds(lo, hi, lo_open, hi_open)]))

    def check(key: str, value: Any) -> Any:
        v = value
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                raise fail(key, what, value) from None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise fail(key, what, value)
        v = float(v)
        if not math.isfinite(v) or not _in_bounds(v, lo, hi, lo_open, hi_open):
            raise fail(key, what, value)
        return v
    return check


def one_of(*choices: str) -> Check:
    def check(key: str, value: Any) -> Any:
        if value not in choices:
            raise fail(key, f"one of {list(choices)}", value)
        return value
    return check


def text(*, nullable: bool = False) -> Check:
    what = "a non-empty string" + (" or null" if nullable else "")

    def check(key: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(key, what, value)
        return value
    return check


def int_list(lo: int = 0, *, increasing: bool = False, distinct: bool = False, non_empty: bool = False) -> Check:
    what = (f"a {'non-empty ' if non_empty else ''}list of {'distinct ' if distinct else ''}ints >= {lo}"
            f"{' in increasing order' if increasing else ''}")

    def check(key: str, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or (non_empty and not value):
            raise fail(key, what, value)
        if not all(_is_int(v) and v >= lo for v in value):
            raise fail(key, what, value)
        if increasing and list(value) != sorted(value):
            raise fail(key, what, value)
        if distinct and len(set(value)) != len(value):
            raise fail(key, what, value)
        return [int(v) for v in value]
    return check


def name_list(known: Callable[[], list[str]] | None = None) -> Check:
    """A list of distinct names; with ``known``, each must be one of them (e.g. registered methods)."""
    def check(key: str, value: Any) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise fail(key, "a list of names", value)
        if len(set(value)) != len(value):
            raise fail(key, "a list of distinct names", value)
        if known is not None:
            names = known()
            for i, v in enumerate(value):
                if v not in names:
                    raise M2mError(f"{key}[{i}] is {v!r}, not a known name; known: {', '.join(names)}")
        return list(value)
    return check


def mapping(key: str, value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise fail(key, "a mapping", value)
    return dict(value)


__all__ = ["Check", "fail", "int_in", "int_list", "mapping", "name_list", "number_in", "one_of", "text"]
