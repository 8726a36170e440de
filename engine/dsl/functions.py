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
    context_active,
    days_since,
    duration_arg,
    hours_since,
    keyed_counter,
    keyed_timestamp,
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
    names: Mapping[int, str] | None = None  # index -> what the constant names ("context")
    # For the reference (docs/rules.md, engine/pack/reference.py), in plain words:
    doc: str = ""  # what it gives, in one line
    args: tuple[str, ...] = ()  # argument names, for the signature; optional ones after min_args
    units: str = ""  # of the result and the arguments (hours, epoch seconds, ...)
    rounding: str = ""  # how the result is rounded or truncated, if it is a number
    nulls: str = ""  # what a null or wrong-typed argument gives


def _t(*names: str) -> frozenset[str]:
    return frozenset(names) | {"any", "null"}


_TIME = _t("time")
_KEY = _t("str", "int", "number")  # an instance key: text or a whole number
_NUMBER = _t("int", "float", "number")
_STR = _t("str")
_ANY = frozenset({"str", "int", "float", "number", "bool", "time", "list", "map", "any", "null"})

_D = {1: duration_arg}

# Shared wording for the reference.
_SINCE = "null when the time is null, not a time, or outside the years 1 to 9999"
_SINCE_R = "not rounded: 90 minutes is 1.5 hours; negative when the time is after now"
_LOCAL = "no argument, or a null or non-time one: now; a time outside the years 1 to 9999: null"
_CONST = "constant arguments: checked and worked out once, at load"
_TEXT = "null when the text is null or not text"
_TEST = "false (never null) when either argument is null or not text"
_NUM_NULL = "null when the argument is null or not a number"
_WINDOW = "the window is a constant duration ('7d', const.x); counts only the history kept"

FUNCTIONS: dict[str, FunctionSpec] = {
    f.name: f
    for f in [
        FunctionSpec(
            "hours_since", hours_since, (_TIME,), "float", 1, needs=("now",),
            doc="Hours from a time to now.", args=("time",),
            units="hours; the time in epoch seconds", rounding=_SINCE_R, nulls=_SINCE,
        ),
        FunctionSpec(
            "minutes_since", minutes_since, (_TIME,), "float", 1, needs=("now",),
            doc="Minutes from a time to now.", args=("time",),
            units="minutes; the time in epoch seconds", rounding=_SINCE_R, nulls=_SINCE,
        ),
        FunctionSpec(
            "days_since", days_since, (_TIME,), "float", 1, needs=("now",),
            doc="Days from a time to now (24-hour days, not calendar days).", args=("time",),
            units="days; the time in epoch seconds", rounding=_SINCE_R, nulls=_SINCE,
        ),
        FunctionSpec(
            "local_hour", local_hour, (_TIME,), "int", 0, needs=("now", "ctx"),
            doc="Hour of day in the customer's time zone, now or at a time.", args=("time",),
            units="hour 0 to 23; zone from the timezone attribute (UTC if absent or unknown)",
            rounding="the hour started: 21:59 is 21", nulls=_LOCAL,
        ),
        FunctionSpec(
            "local_weekday", local_weekday, (_TIME,), "int", 0, needs=("now", "ctx"),
            doc="Day of week in the customer's time zone, now or at a time.", args=("time",),
            units="0 (monday) to 6 (sunday): compare with the names monday .. sunday",
            nulls=_LOCAL,
        ),
        FunctionSpec(
            "local_time_between", local_time_between, (_STR, _STR), "bool", 2,
            needs=("now", "ctx"), constant_args={0: clock_minutes, 1: clock_minutes},
            doc="Whether the customer's local time now is from start up to (not including) "
            "end; '21:00' to '08:00' wraps midnight.", args=("start", "end"),
            units="'HH:MM' constants, in the customer's time zone",
            rounding="to the minute", nulls="a bad time of day is an error at load",
        ),
        FunctionSpec(
            "duration", duration_arg, (_t("str", "int", "float"),), "float", 1,
            constant_args={0: duration_arg}, fold=True,
            doc="The seconds in a duration: duration('30m') is 1800.", args=("text",),
            units="seconds; units ms, s, m, h, d, w; at most a century",
            nulls=_CONST + "; a bad duration is an error there",
        ),
        FunctionSpec(
            "date", date_value, (_STR, _STR), "time", 1, constant_args={0: parse_date, 1: zone},
            fold=True, doc="The start of a day, date('2026-11-27'): midnight UTC, or in the "
            "zone given second, date('2026-11-27', 'Europe/Rome').", args=("day", "zone"),
            units="epoch seconds (a time, like event.at and now)",
            nulls=_CONST + "; a bad date or unknown zone is an error there",
        ),
        FunctionSpec(
            "datetime", datetime_value, (_STR, _STR), "time", 1,
            constant_args={0: parse_datetime, 1: zone}, fold=True,
            doc="An instant, datetime('2026-11-27T09:00+01:00'); without an offset, give the "
            "zone second: datetime('2026-11-27T09:00', 'Europe/Rome').", args=("text", "zone"),
            units="epoch seconds (a time, like event.at and now)",
            nulls=_CONST + "; a missing offset and zone is an error there",
        ),
        FunctionSpec(
            "sent_count", sent_count, (_STR, _t("str", "int", "float")), "int", 2,
            needs=("now", "ctx"), constant_args=_D,
            doc="How many times this message was sent to the customer within a window.",
            args=("message", "window"), units="a count; " + _WINDOW,
            nulls="0 when the message is null or was never sent",
        ),
        FunctionSpec(
            "category_sent_count", category_sent_count, (_STR, _t("str", "int", "float")),
            "int", 2, needs=("now", "ctx"), constant_args=_D,
            doc="How many messages of a category were sent to the customer within a window.",
            args=("category", "window"), units="a count; " + _WINDOW,
            nulls="0 when the category is null or nothing was sent",
        ),
        FunctionSpec(
            "last_sent", last_sent, (_STR,), "time", 1, needs=("ctx",),
            doc="When a message was last sent to the customer.", args=("message",),
            units="epoch seconds; sees only the history kept (see Retention)",
            nulls="null when it was never sent, or no longer in the history",
        ),
        FunctionSpec(
            "context_active", context_active, (_STR, _KEY), "bool", 2,
            needs=("now", "ctx"), constant_args={0: str}, names={0: "context"},
            doc="Whether one instance of a keyed context is active: "
            "context_active('pending_quote', event.data.quote_id).", args=("context", "key"),
            units="the context is a constant naming a context declared with key:",
            nulls="false (never null) when the key is null, or neither text nor a whole number",
        ),
        FunctionSpec(
            "counter", keyed_counter, (_STR, _KEY), "float", 2, needs=("ctx",),
            constant_args={0: str}, names={0: "counter"},
            doc="One key's instance of a counter an update keeps per key: "
            "counter('failed_deliveries', event.data.parcel).", args=("counter", "key"),
            units="the counter is a constant naming a counter incremented with key:",
            nulls="0 (never null) when that key was never counted, or the key is null",
        ),
        FunctionSpec(
            "timestamp", keyed_timestamp, (_STR, _KEY), "time", 2, needs=("ctx",),
            constant_args={0: str}, names={0: "timestamp"},
            doc="One key's instance of a timestamp an update keeps per key: "
            "hours_since(timestamp('last_failed_delivery', event.data.parcel)).",
            args=("timestamp", "key"),
            units="epoch seconds; the timestamp is a constant naming one set with key:",
            nulls="null when that key's was never set, or the key is null",
        ),
        FunctionSpec(
            "lower", str_fn(str.lower), (_STR,), "str", 1, doc="The text in lower case.",
            args=("text",), nulls=_TEXT,
        ),
        FunctionSpec(
            "upper", str_fn(str.upper), (_STR,), "str", 1, doc="The text in upper case.",
            args=("text",), nulls=_TEXT,
        ),
        FunctionSpec(
            "trim", str_fn(str.strip), (_STR,), "str", 1,
            doc="The text without spaces and line breaks at either end.", args=("text",),
            nulls=_TEXT,
        ),
        FunctionSpec(
            "startswith", startswith, (_STR, _STR), "bool", 2,
            doc="Whether the text starts with the prefix (case matters).",
            args=("text", "prefix"), nulls=_TEST,
        ),
        FunctionSpec(
            "endswith", endswith, (_STR, _STR), "bool", 2,
            doc="Whether the text ends with the suffix (case matters).",
            args=("text", "suffix"), nulls=_TEST,
        ),
        FunctionSpec(
            "contains", contains, (_t("str", "list", "map"), _ANY), "bool", 2,
            doc="Whether text holds a piece of text, a list an item, or a map a key.",
            args=("container", "item"),
            nulls="false (never null) when the container is null or of another type",
        ),
        FunctionSpec(
            "len", length, (_t("str", "list", "map"),), "int", 1,
            doc="The number of characters in text, items in a list or keys in a map.",
            args=("value",), nulls="null when the value is null or of another type",
        ),
        FunctionSpec(
            "matches", matches, (_STR, _STR), "bool", 2, constant_args={1: compile_regex},
            doc="Whether a regular expression (RE2) matches anywhere in the text.",
            args=("text", "pattern"), units="the pattern is a constant, checked at load",
            nulls="false (never null) when the text is null or not text",
        ),
        FunctionSpec(
            "abs", num1(abs), (_NUMBER,), "number", 1, doc="The number without its sign.",
            args=("number",), nulls=_NUM_NULL,
        ),
        FunctionSpec(
            "min", minmax(min), (_NUMBER,), "number", 1, variadic=True,
            doc="The smallest of the numbers.", args=("number",),
            nulls="nulls and non-numbers are skipped; null when none is left",
        ),
        FunctionSpec(
            "max", minmax(max), (_NUMBER,), "number", 1, variadic=True,
            doc="The largest of the numbers.", args=("number",),
            nulls="nulls and non-numbers are skipped; null when none is left",
        ),
        FunctionSpec(
            "round", rounded, (_NUMBER, _t("int")), "number", 1,
            literal_range={1: (-ROUND_DIGITS, ROUND_DIGITS)},
            doc="The number rounded to a whole number, or to n digits after the point "
            "(n below 0: to tens, hundreds...).", args=("number", "n"),
            units=f"n from -{ROUND_DIGITS} to {ROUND_DIGITS} (a literal outside is an error "
            "at load)",
            rounding="half to even: round(2.5) is 2, round(3.5) is 4; binary fractions: "
            "round(2.675, 2) is 2.67",
            nulls="null for null, a non-number, NaN, infinity or n out of range",
        ),
        FunctionSpec(
            "int", to_int, (_ANY,), "int", 1,
            doc="A whole number from a number, text ('42', '3.7') or true/false.",
            args=("value",), rounding="towards zero: int(3.7) is 3, int(-3.7) is -3",
            nulls="null when it cannot be converted or is beyond 64 bits",
        ),
        FunctionSpec(
            "float", to_float, (_ANY,), "float", 1,
            doc="A number with a fractional part from a number, text or true/false.",
            args=("value",), nulls="null when it cannot be converted, NaN or infinite",
        ),
        FunctionSpec(
            "str", to_str, (_ANY,), "str", 1,
            doc="Text from a number or true/false ('true', 'false'); text stays as it is.",
            args=("value",), nulls="null for null, a list or a map",
        ),
        FunctionSpec(
            "coalesce", coalesce, (_ANY,), "any", 1, variadic=True,
            doc="The first argument that is not null: coalesce(event.data.value, 0).",
            args=("value",), nulls="null when every argument is null",
        ),
    ]
}
