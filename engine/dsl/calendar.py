"""Calendar values fixed when a pack loads: dates, date-times, time zones, campaign windows.

Every value here is an instant in epoch seconds (the ``time`` type of the language, the
same as ``event.at`` and ``now``), worked out once at load: nothing on the hot path parses
a date or looks up a zone. A date on its own is midnight UTC unless a zone is named, so
the meaning of ``date("2026-11-27")`` never depends on where the engine runs.

Errors are :class:`ValueError` with a message for the author; the compiler and the loader
put them at the right file:line:col.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

WEEKDAYS: dict[str, int] = {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A date, a T (or a space), hours and minutes, optional seconds and fraction, optional offset.
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)


@cache
def _zones() -> dict[str, str]:
    """Every IANA zone this machine knows, by lower-cased name (for suggestions)."""
    return {z.lower(): z for z in available_timezones()}


def zone(name: object) -> ZoneInfo:
    """The IANA zone called ``name``; an unknown one is an error naming the closest."""
    if not isinstance(name, str) or not name:
        raise ValueError("expected a time zone such as 'Europe/Rome'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = _zones()
    exact = known.get(name.lower())
    if exact is not None:
        return ZoneInfo(exact)
    close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{known[close[0]]}'?" if close else " (use an IANA name)"
    raise ValueError(f"unknown time zone {name!r}{hint}")


def parse_date(text: object) -> date:
    """A calendar date written YYYY-MM-DD."""
    if isinstance(text, datetime):
        raise ValueError("expected a date such as '2026-11-27', not a date and time")
    if isinstance(text, date):
        return text
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError(f"expected a date written YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid date {text!r}: {exc}") from None


def parse_datetime(text: object) -> datetime:
    """A date and time written YYYY-MM-DDTHH:MM[:SS][offset]; naive when no offset is given."""
    if isinstance(text, datetime):
        return text
    if not isinstance(text, str) or not _DATETIME.fullmatch(text):
        raise ValueError(
            f"expected a date and time such as '2026-11-27T09:00+01:00', got {text!r}"
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"invalid date and time {text!r}: {exc}") from None


def _epoch(moment: datetime) -> float:
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):  # a zone's offset pushed it past year 1 or 9999
        raise ValueError(f"{moment.isoformat()} is outside the calendar") from None


def midnight(day: date, tz: tzinfo | None = None) -> float:
    """The instant a day starts in ``tz`` (UTC when None)."""
    return _epoch(datetime(day.year, day.month, day.day, tzinfo=tz or UTC))


def instant(moment: datetime, tz: tzinfo | None = None) -> float:
    """A date-time as an instant: its own offset wins; otherwise it is read in ``tz``."""
    if moment.tzinfo is None:
        if tz is None:
            raise ValueError(
                f"{moment.isoformat()} has no UTC offset: add one (e.g. +01:00 or Z) "
                "or name a zone"
            )
        moment = moment.replace(tzinfo=tz)
    return _epoch(moment)


def date_value(day: date, tz: tzinfo | None = None) -> float:
    """``date("2026-11-27"[, zone])``: midnight of that day in the zone, UTC by default."""
    return midnight(day, tz)


def datetime_value(moment: datetime, tz: tzinfo | None = None) -> float:
    """``datetime("2026-11-27T09:00+01:00")``, or a local time with a zone as 2nd argument."""
    return instant(moment, tz)


def bound(value: object, tz: tzinfo, *, end: bool) -> float:
    """One end of a campaign window: a date is the start of that day in ``tz`` (for the
    end, the start of the next day: the whole day is in), a date-time is that instant."""
    if isinstance(value, datetime) or (isinstance(value, str) and not _DATE.fullmatch(value)):
        return instant(parse_datetime(value), tz)
    day = parse_date(value)
    if end:
        try:
            day += timedelta(days=1)
        except OverflowError:
            raise ValueError(f"{day.isoformat()} is the last day of the calendar") from None
    return midnight(day, tz)


def describe(t: float, tz: tzinfo) -> str:
    """An instant as the author would write it, in the window's zone (for traces)."""
    return datetime.fromtimestamp(t, tz).isoformat(timespec="minutes")
