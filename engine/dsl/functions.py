"""The whitelist of functions an expression may call.

Each function declares its argument types and return type (checked at compile time),
which arguments must be constants (regexes, durations: prepared once at load), the range
of a numeric literal argument (checked at compile time; at run time the function itself
gives null), and what of the evaluation environment it needs (``now``, the customer's
state). The implementations live in :mod:`engine.dsl.timefns` and :mod:`engine.dsl.valuefns`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.dsl.calendar import date_value, datetime_value, parse_date, parse_datetime, zone
from engine.dsl.timefns import (
    EvalContext,
    category_sent_count,
    clock_minutes,
    days_since,
    duration_arg,
    hours_since,
    last_sent,
    local_hour,
    local_time_between,
    local_weekday,
    minutes_since,
    resolve_tz,
    sent_count,
)
from engine.dsl.valuefns import (
    ROUND_DIGITS,
    coalesce,
    compile_regex,
    contains,
    endswith,
    length,
    matches,
    minmax,
    num1,
    rounded,
    startswith,
    str_fn,
    to_float,
    to_int,
    to_str,
)

__all__ = ["FUNCTIONS", "EvalContext", "FunctionSpec", "clock_minutes", "resolve_tz"]


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
    literal_range: Mapping[int, tuple[int, int]] | None = None  # index -> allowed literals
    fold: bool = False  # all arguments are constants: the call is made once, at load
    doc: str = ""


def _t(*names: str) -> frozenset[str]:
    return frozenset(names) | {"any", "null"}


_TIME = _t("time")
_NUMBER = _t("int", "float", "number")
_STR = _t("str")
_ANY = frozenset({"str", "int", "float", "number", "bool", "time", "list", "map", "any", "null"})

_D = {1: duration_arg}

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
            doc="Day of week in the customer's time zone: 0 to 6, named monday to sunday.",
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
            duration_arg,
            (_t("str", "int", "float"),),
            "float",
            1,
            constant_args={0: duration_arg},
            fold=True,
            doc="Seconds in a duration like '30m'.",
        ),
        FunctionSpec(
            "date",
            date_value,
            (_STR, _STR),
            "time",
            1,
            constant_args={0: parse_date, 1: zone},
            fold=True,
            doc="The start of a day, date('2026-11-27'): midnight UTC, or in the zone given "
            "as a second argument, date('2026-11-27', 'Europe/Rome').",
        ),
        FunctionSpec(
            "datetime",
            datetime_value,
            (_STR, _STR),
            "time",
            1,
            constant_args={0: parse_datetime, 1: zone},
            fold=True,
            doc="An instant, datetime('2026-11-27T09:00+01:00'); without an offset, the "
            "zone is the second argument, datetime('2026-11-27T09:00', 'Europe/Rome').",
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
        FunctionSpec("lower", str_fn(str.lower), (_STR,), "str", 1, doc="Lower case."),
        FunctionSpec("upper", str_fn(str.upper), (_STR,), "str", 1, doc="Upper case."),
        FunctionSpec("trim", str_fn(str.strip), (_STR,), "str", 1, doc="Strip white space."),
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
            constant_args={1: compile_regex},
            doc="RE2 regular expression search (linear time); the pattern is a constant.",
        ),
        FunctionSpec("abs", num1(abs), (_NUMBER,), "number", 1, doc="Absolute value."),
        FunctionSpec(
            "min",
            minmax(min),
            (_NUMBER,),
            "number",
            1,
            variadic=True,
            doc="Smallest number (nulls ignored).",
        ),
        FunctionSpec(
            "max",
            minmax(max),
            (_NUMBER,),
            "number",
            1,
            variadic=True,
            doc="Largest number (nulls ignored).",
        ),
        FunctionSpec(
            "round",
            rounded,
            (_NUMBER, _t("int")),
            "number",
            1,
            literal_range={1: (-ROUND_DIGITS, ROUND_DIGITS)},
            doc=f"Round to n digits (|n| <= {ROUND_DIGITS}).",
        ),
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
