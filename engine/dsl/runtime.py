"""Helpers that compiled expressions call. They make every operator null-safe, total and bounded.

A comparison between values that cannot be ordered (a missing field, a string against a
number in bad data) is false rather than an exception, so one malformed event can never
take a rule, a batch or the worker down.
"""

from __future__ import annotations

from typing import Any

from engine.dsl.valuefns import INT_LIMIT, MAX_TEXT
from engine.models.records import instance_key

_NUM = (int, float)


def lt(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        return False


def le(a: Any, b: Any) -> bool:
    try:
        return bool(a <= b)
    except TypeError:
        return False


def gt(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return False


def ge(a: Any, b: Any) -> bool:
    try:
        return bool(a >= b)
    except TypeError:
        return False


def member(a: Any, b: Any) -> bool:
    try:
        return a in b
    except TypeError:
        return False


def not_member(a: Any, b: Any) -> bool:
    try:
        return a not in b
    except TypeError:
        return False


def get(x: Any, key: str) -> Any:
    return x.get(key) if type(x) is dict else None


def index(x: Any, i: Any) -> Any:
    if type(x) is list and type(i) is int and -len(x) <= i < len(x):
        return x[i]
    if type(x) is dict:
        return x.get(i)
    return None


# A declared map (customer.maps.<name>): its live entries, key -> value. Keys are the text
# an instance key gives (engine.models.records.instance_key): 42 and "42" are one key.
_NO_ENTRIES: dict[str, Any] = {}  # an absent map's entries: none (expressions never write)


def map_entries(maps: dict[str, Any], name: str) -> dict[str, Any]:
    entries: dict[str, Any] = maps.get(name, _NO_ENTRIES)
    return entries


def map_get(entries: dict[str, Any], key: Any) -> Any:
    k = instance_key(key)
    return None if k is None else entries.get(k)


def map_has(key: Any, entries: dict[str, Any]) -> bool:
    k = instance_key(key)
    return k is not None and k in entries


def _num(a: Any, b: Any) -> bool:
    return type(a) in _NUM and type(b) in _NUM


# Arithmetic is bounded: a product beyond 64 bits is null (repeated products of big data
# would otherwise grow without bound), a string built by + is at most MAX_TEXT characters,
# and an integer too large to mix with a float (OverflowError) gives null.


def add(a: Any, b: Any) -> Any:
    if _num(a, b):
        try:
            return a + b
        except OverflowError:
            return None
    if type(a) is str and type(b) is str and len(a) + len(b) <= MAX_TEXT:
        return a + b
    return None


def sub(a: Any, b: Any) -> Any:
    if not _num(a, b):
        return None
    try:
        return a - b
    except OverflowError:
        return None


def mul(a: Any, b: Any) -> Any:
    # Numbers only: no string or list repetition, which could allocate without bound.
    if not _num(a, b):
        return None
    try:
        r = a * b
    except OverflowError:
        return None
    return r if type(r) is float or -INT_LIMIT < r < INT_LIMIT else None


def div(a: Any, b: Any) -> Any:
    if not _num(a, b) or b == 0:
        return None
    try:
        return a / b
    except OverflowError:
        return None


def floordiv(a: Any, b: Any) -> Any:
    if not _num(a, b) or b == 0:
        return None
    try:
        return a // b
    except OverflowError:
        return None


def mod(a: Any, b: Any) -> Any:
    if not _num(a, b) or b == 0:
        return None
    try:
        return a % b
    except OverflowError:
        return None


def neg(a: Any) -> Any:
    return -a if type(a) in _NUM else None


HELPERS: dict[str, Any] = {
    "_lt": lt,
    "_le": le,
    "_gt": gt,
    "_ge": ge,
    "_in": member,
    "_nin": not_member,
    "_g": get,
    "_idx": index,
    "_add": add,
    "_sub": sub,
    "_mul": mul,
    "_div": div,
    "_fdiv": floordiv,
    "_mod": mod,
    "_neg": neg,
    "_mall": map_entries,
    "_mget": map_get,
    "_mhas": map_has,
}
