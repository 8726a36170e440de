"""The value functions of the expression language: strings, numbers, conversions.

Every one is total and bounded: a value of the wrong type, out of range or not finite
gives null, never an exception, and no argument can make one allocate or compute without
bound (``round(1, -100000000)`` would build a hundred-million-digit power of ten).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import re2

_NUM = (int, float)

INT_LIMIT = 2**63  # integers an expression makes stay within a signed 64-bit range
ROUND_DIGITS = 20  # round()'s ndigits: beyond 20 either way, no float or int64 changes
MAX_TEXT = 65536  # characters in a string an expression builds


def bounded_int(v: int) -> int | None:
    """``v``, or None when it is outside the 64-bit range every consumer can hold."""
    return v if -INT_LIMIT < v < INT_LIMIT else None


def str_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    def wrapped(s: Any) -> Any:
        return fn(s) if isinstance(s, str) else None

    return wrapped


def startswith(s: Any, p: Any) -> bool:
    return isinstance(s, str) and isinstance(p, str) and s.startswith(p)


def endswith(s: Any, p: Any) -> bool:
    return isinstance(s, str) and isinstance(p, str) and s.endswith(p)


def contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, list | tuple | dict | frozenset | set):
        try:
            return item in container
        except (TypeError, RecursionError):  # unhashable key; absurdly nested data
            return False
    return False


def length(x: Any) -> int | None:
    return len(x) if isinstance(x, str | list | tuple | dict) else None


def matches(s: Any, pattern: Any) -> bool:
    # RE2 runs in linear time: a pattern cannot hang the worker.
    return isinstance(s, str) and pattern.search(s) is not None


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is reported to the author, not to stderr


def compile_regex(p: Any) -> Any:
    if not isinstance(p, str):
        raise ValueError("the pattern must be a string")
    try:
        return re2.compile(p, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise ValueError(f"invalid regular expression: {detail}") from None


def num1(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def wrapped(x: Any) -> Any:
        return fn(x) if type(x) in _NUM else None

    return wrapped


def minmax(pick: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*xs: Any) -> Any:
        nums = [x for x in xs if type(x) in _NUM]
        return pick(nums) if nums else None

    return wrapped


def rounded(x: Any, *nd: Any) -> Any:
    """round(x) or round(x, n): null for a non-number, NaN, infinity or n out of range."""
    if type(x) not in _NUM or (type(x) is float and not math.isfinite(x)):
        return None
    if nd and type(nd[0]) is int:
        if not -ROUND_DIGITS <= nd[0] <= ROUND_DIGITS:
            return None
        r = round(x, nd[0])
        return r if type(r) is float else bounded_int(r)
    return bounded_int(round(x))


def to_int(x: Any) -> int | None:
    try:
        v = int(float(x)) if isinstance(x, str) else int(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return bounded_int(v)


def to_float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond floats
        return None
    return v if math.isfinite(v) else None


def to_str(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return x
    if isinstance(x, int | float):
        try:
            return str(x)
        except ValueError:  # an int with more digits than Python converts
            return None
    return None


def coalesce(*xs: Any) -> Any:
    for x in xs:
        if x is not None:
            return x
    return None
