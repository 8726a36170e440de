"""The time functions of the expression language, and the range of times they accept.

Python's datetime covers the years 1 to 9999; an epoch time outside that range (bad data,
or an event dated at the very edge of it, shifted by a time zone) would raise deep inside a
conversion. Every conversion here checks the range first and gives null instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.dsl.durations import parse_duration
from engine.models.state import KEY_SEP, CustomerState, instance_key

_UTC = ZoneInfo("UTC")
_NUM = (int, float)

# Two days inside datetime's range: any zone's offset, and "the next day" after a quiet
# window, stay representable.
MIN_TS = datetime(1, 1, 3, tzinfo=UTC).timestamp()
MAX_TS = datetime(9999, 12, 29, tzinfo=UTC).timestamp()


def in_range(t: float | int) -> bool:
    """Whether an epoch time can be converted to a local date and time in any zone."""
    # int spelled out: compiled (mypyc), a float parameter refuses an int too large for a
    # float, where Python compares it exactly
    return MIN_TS <= t <= MAX_TS  # false for NaN too


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
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            return _UTC
    return _UTC


def _time(t: Any) -> float | None:
    """A time argument as epoch seconds, or None when it is not a time in range."""
    if type(t) not in _NUM or not in_range(t):  # huge ints compare exactly: no overflow
        return None
    return float(t)


def _since(now: float, t: Any, unit: float) -> float | None:
    ts = _time(t)
    return None if ts is None else (now - ts) / unit


def hours_since(now: float, t: Any) -> float | None:
    return _since(now, t, 3600.0)


def minutes_since(now: float, t: Any) -> float | None:
    return _since(now, t, 60.0)


def days_since(now: float, t: Any) -> float | None:
    return _since(now, t, 86400.0)


def _local(ctx: EvalContext, now: float, t: tuple[Any, ...]) -> datetime | None:
    ts = _time(t[0] if t and type(t[0]) in _NUM else now)  # not a number: now, as documented
    return None if ts is None else datetime.fromtimestamp(ts, ctx.tz)


def local_hour(now: float, ctx: EvalContext, *t: Any) -> int | None:
    local = _local(ctx, now, t)
    return None if local is None else local.hour


def local_weekday(now: float, ctx: EvalContext, *t: Any) -> int | None:
    local = _local(ctx, now, t)
    return None if local is None else local.weekday()


def clock_minutes(text: Any) -> int:
    if not isinstance(text, str):
        raise ValueError("expected a time of day such as '21:00'")
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 23 or int(mm) > 59:
        raise ValueError(f"invalid time of day {text!r}: use HH:MM")
    return int(hh) * 60 + int(mm)


def local_time_between(now: float, ctx: EvalContext, start: int, end: int) -> bool | None:
    local = _local(ctx, now, ())
    if local is None:
        return None
    minute = local.hour * 60 + local.minute
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight


# The sent-history functions see what was sent: a held entry (a holdout's "virtual send",
# SentRecord.held) was not, and must not make a held-out customer look sent to a rule.
def sent_count(now: float, ctx: EvalContext, message: Any, window: float) -> int:
    since = now - window
    return sum(1 for h in ctx.state.history
               if h.message == message and h.at >= since and not h.held)


def category_sent_count(now: float, ctx: EvalContext, category: Any, window: float) -> int:
    since = now - window
    return sum(1 for h in ctx.state.history
               if h.category == category and h.at >= since and not h.held)


def last_sent(ctx: EvalContext, message: Any) -> float | None:
    return max((h.at for h in ctx.state.history if h.message == message and not h.held),
               default=None)


def duration_arg(x: Any) -> float:
    """A constant duration argument, prepared at load (raises ValueError when malformed)."""
    if not isinstance(x, str | int | float):
        raise ValueError("expected a duration such as '24h'")
    return parse_duration(x)


def context_active(now: float, ctx: EvalContext, name: str, key: Any) -> bool:
    """Whether the instance ``key`` of the keyed context ``name`` is active now."""
    k = instance_key(key)
    if k is None:
        return False
    until = ctx.state.contexts.get(name + KEY_SEP + k)
    return until is not None and until > now


def keyed_counter(ctx: EvalContext, name: str, key: Any) -> float:
    """The instance ``key`` of the keyed counter ``name``: 0 when never counted."""
    k = instance_key(key)
    return 0 if k is None else ctx.state.counters.get(name + KEY_SEP + k, 0)


def keyed_timestamp(ctx: EvalContext, name: str, key: Any) -> float | None:
    """The instance ``key`` of the keyed timestamp ``name``: None when never set."""
    k = instance_key(key)
    return None if k is None else ctx.state.timestamps.get(name + KEY_SEP + k)
