"""The whitelist of functions an expression may call.

Each function declares its argument types and return type (checked at compile time),
which arguments must be constants (regexes, durations: prepared once at load), and what
of the evaluation environment it needs (``now``, the customer's state).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2

from engine.dsl.durations import parse_duration
from engine.models.state import CustomerState

_UTC = ZoneInfo("UTC")
_NUM = (int, float)


class EvalContext:
    """What functions may see beyond their arguments: the customer's state and time zone."""

    __slots__ = ("_tz", "state", "tz_attribute")

    def __init__(self, state: CustomerState, tz_attribute: str = "tz") -> None:
        self.state = state
        self.tz_attribute = tz_attribute
        self._tz: ZoneInfo | None = None

    @property
    def tz(self) -> ZoneInfo:
        if self._tz is None:
            self._tz = resolve_tz(self.state.attributes.get(self.tz_attribute))
        return self._tz


def resolve_tz(name: object) -> ZoneInfo:
    """The customer's zone; UTC when absent or unknown (never fail a decision on it)."""
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return _UTC
    return _UTC


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    impl: Callable[..., Any]
    params: tuple[frozenset[str], ...]  # accepted types for each positional argument
    returns: str
    min_args: int
    variadic: bool = False  # the last param type repeats
    needs: tuple[str, ...] = ()  # prepended arguments: "now", "ctx"
    constant_args: Mapping[int, Callable[[Any], Any]] | None = None  # index -> load-time prep
    doc: str = ""


def _t(*names: str) -> frozenset[str]:
    return frozenset(names) | {"any", "null"}


_TIME = _t("time")
_NUMBER = _t("int", "float", "number")
_STR = _t("str")
_ANY = frozenset({"str", "int", "float", "number", "bool", "time", "list", "map", "any", "null"})


def _since(now: float, t: Any, unit: float) -> float | None:
    if type(t) not in _NUM:
        return None
    return (now - float(t)) / unit


def hours_since(now: float, t: Any) -> float | None:
    return _since(now, t, 3600.0)


def minutes_since(now: float, t: Any) -> float | None:
    return _since(now, t, 60.0)


def days_since(now: float, t: Any) -> float | None:
    return _since(now, t, 86400.0)


def _local(ctx: EvalContext, t: float) -> datetime:
    return datetime.fromtimestamp(t, ctx.tz)


def local_hour(now: float, ctx: EvalContext, *t: Any) -> int:
    return _local(ctx, float(t[0]) if t and type(t[0]) in _NUM else now).hour


def local_weekday(now: float, ctx: EvalContext, *t: Any) -> int:
    return _local(ctx, float(t[0]) if t and type(t[0]) in _NUM else now).weekday()


def clock_minutes(text: Any) -> int:
    if not isinstance(text, str):
        raise ValueError("expected a time of day such as '21:00'")
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 23 or int(mm) > 59:
        raise ValueError(f"invalid time of day {text!r}: use HH:MM")
    return int(hh) * 60 + int(mm)


def local_time_between(now: float, ctx: EvalContext, start: int, end: int) -> bool:
    local = _local(ctx, now)
    minute = local.hour * 60 + local.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight


def sent_count(now: float, ctx: EvalContext, message: Any, window: float) -> int:
    since = now - window
    return sum(1 for h in ctx.state.history if h.message == message and h.at >= since)


def category_sent_count(now: float, ctx: EvalContext, category: Any, window: float) -> int:
    since = now - window
    return sum(1 for h in ctx.state.history if h.category == category and h.at >= since)


def last_sent(ctx: EvalContext, message: Any) -> float | None:
    return max((h.at for h in ctx.state.history if h.message == message), default=None)


def _str_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
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
        except TypeError:
            return False
    return False


def length(x: Any) -> int | None:
    return len(x) if isinstance(x, str | list | tuple | dict) else None


def matches(s: Any, pattern: Any) -> bool:
    # RE2 runs in linear time: a pattern cannot hang the worker.
    return isinstance(s, str) and pattern.search(s) is not None


def _compile_regex(p: Any) -> Any:
    if not isinstance(p, str):
        raise ValueError("the pattern must be a string")
    try:
        return re2.compile(p)
    except re2.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def _num1(fn: Callable[[float], Any]) -> Callable[[Any], Any]:
    def wrapped(x: Any) -> Any:
        return fn(x) if type(x) in _NUM else None

    return wrapped


def _minmax(pick: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*xs: Any) -> Any:
        nums = [x for x in xs if type(x) in _NUM]
        return pick(nums) if nums else None

    return wrapped


def rounded(x: Any, *nd: Any) -> Any:
    if type(x) not in _NUM:
        return None
    return round(x, int(nd[0])) if nd and type(nd[0]) is int else round(x)


def to_int(x: Any) -> int | None:
    try:
        v = int(float(x)) if isinstance(x, str) else int(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return v


def to_float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def to_str(x: Any) -> str | None:
    if x is None:
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str | int | float):
        return str(x)
    return None


def coalesce(*xs: Any) -> Any:
    for x in xs:
        if x is not None:
            return x
    return None


def _duration_arg(x: Any) -> float:
    if not isinstance(x, str | int | float):
        raise ValueError("expected a duration such as '24h'")
    return parse_duration(x)


def _identity(x: Any) -> Any:
    return x


_D = {1: _duration_arg}

FUNCTIONS: dict[str, FunctionSpec] = {
    f.name: f
    for f in [
        FunctionSpec(
            "hours_since",
            hours_since,
            (_TIME,),
            "float",
            1,
            needs=("now",),
            doc="Hours from a time to now (null if the time is null).",
        ),
        FunctionSpec(
            "minutes_since",
            minutes_since,
            (_TIME,),
            "float",
            1,
            needs=("now",),
            doc="Minutes from a time to now.",
        ),
        FunctionSpec(
            "days_since",
            days_since,
            (_TIME,),
            "float",
            1,
            needs=("now",),
            doc="Days from a time to now.",
        ),
        FunctionSpec(
            "local_hour",
            local_hour,
            (_TIME,),
            "int",
            0,
            needs=("now", "ctx"),
            doc="Hour of day (0-23) in the customer's time zone, now or at a time.",
        ),
        FunctionSpec(
            "local_weekday",
            local_weekday,
            (_TIME,),
            "int",
            0,
            needs=("now", "ctx"),
            doc="Day of week (0=Monday) in the customer's time zone.",
        ),
        FunctionSpec(
            "local_time_between",
            local_time_between,
            (_STR, _STR),
            "bool",
            2,
            needs=("now", "ctx"),
            constant_args={0: clock_minutes, 1: clock_minutes},
            doc="Whether the customer's local time is in [start, end); wraps midnight.",
        ),
        FunctionSpec(
            "duration",
            _duration_arg,
            (_t("str", "int", "float"),),
            "float",
            1,
            constant_args={0: _duration_arg},
            doc="Seconds in a duration like '30m'.",
        ),
        FunctionSpec(
            "sent_count",
            sent_count,
            (_STR, _t("str", "int", "float")),
            "int",
            2,
            needs=("now", "ctx"),
            constant_args=_D,
            doc="Messages with this id sent to the customer within a window.",
        ),
        FunctionSpec(
            "category_sent_count",
            category_sent_count,
            (_STR, _t("str", "int", "float")),
            "int",
            2,
            needs=("now", "ctx"),
            constant_args=_D,
            doc="Messages of a category sent within a window.",
        ),
        FunctionSpec(
            "last_sent",
            last_sent,
            (_STR,),
            "time",
            1,
            needs=("ctx",),
            doc="When a message was last sent to the customer, or null.",
        ),
        FunctionSpec("lower", _str_fn(str.lower), (_STR,), "str", 1, doc="Lower case."),
        FunctionSpec("upper", _str_fn(str.upper), (_STR,), "str", 1, doc="Upper case."),
        FunctionSpec("trim", _str_fn(str.strip), (_STR,), "str", 1, doc="Strip white space."),
        FunctionSpec("startswith", startswith, (_STR, _STR), "bool", 2, doc="Prefix test."),
        FunctionSpec("endswith", endswith, (_STR, _STR), "bool", 2, doc="Suffix test."),
        FunctionSpec(
            "contains",
            contains,
            (_t("str", "list", "map"), _ANY),
            "bool",
            2,
            doc="Substring, list member or map key.",
        ),
        FunctionSpec("len", length, (_t("str", "list", "map"),), "int", 1, doc="Length."),
        FunctionSpec(
            "matches",
            matches,
            (_STR, _STR),
            "bool",
            2,
            constant_args={1: _compile_regex},
            doc="RE2 regular expression search (linear time); the pattern is a constant.",
        ),
        FunctionSpec("abs", _num1(abs), (_NUMBER,), "number", 1, doc="Absolute value."),
        FunctionSpec(
            "min",
            _minmax(min),
            (_NUMBER,),
            "number",
            1,
            variadic=True,
            doc="Smallest number (nulls ignored).",
        ),
        FunctionSpec(
            "max",
            _minmax(max),
            (_NUMBER,),
            "number",
            1,
            variadic=True,
            doc="Largest number (nulls ignored).",
        ),
        FunctionSpec("round", rounded, (_NUMBER, _t("int")), "number", 1, doc="Round to n digits."),
        FunctionSpec("int", to_int, (_ANY,), "int", 1, doc="To integer, or null."),
        FunctionSpec("float", to_float, (_ANY,), "float", 1, doc="To float, or null."),
        FunctionSpec("str", to_str, (_ANY,), "str", 1, doc="To string, or null."),
        FunctionSpec(
            "coalesce",
            coalesce,
            (_ANY,),
            "any",
            1,
            variadic=True,
            doc="The first argument that is not null.",
        ),
    ]
}
