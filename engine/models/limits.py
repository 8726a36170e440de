"""The bounds every accepted event keeps, on every path (HTTP ingest, publisher, worker).

Checked once, at the edge, so that nothing downstream meets a value it cannot handle:

* ``at`` between ``TACT_EVENT_EARLIEST`` (default 2000-01-01Z) and ``TACT_EVENT_MAX_AHEAD``
  past the clock (default 365 days): local-time arithmetic on a year-9999 instant overflows.
* ``data``: JSON values only, integers within signed 64 bits (orjson refuses more when it
  writes decisions, msgpack when it writes state), finite floats, at most
  :data:`MAX_DATA_DEPTH` levels of nesting (well under the JSON parsers' own limits, 200 to
  1,024, and orjson's 254 when writing) and :data:`MAX_DATA_BYTES` as compact JSON (well
  under Kafka's 1 MiB record).

Each violation has one reason text, the same whichever path refused it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from engine.errors import EventValidationError

if TYPE_CHECKING:
    from engine.config import TactSettings

MAX_DATA_DEPTH = 32  # ``data`` itself is level 1
MAX_DATA_BYTES = 64 * 1024
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DEFAULT_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_MAX_AHEAD = timedelta(days=365)

_PATH_SHOWN = 160  # characters of a data path in a reason


def _iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AtWindow:
    """The accepted range of ``at`` at one moment, as epoch seconds (inclusive).

    Build one per request or batch (:meth:`EventBounds.window`), not per event.
    """

    earliest: float
    latest: float
    max_ahead: timedelta = DEFAULT_MAX_AHEAD  # for the reason text only
    # Local dates (proleptic ordinals) surely inside: a UTC offset is under a day, so the
    # instant lies within a day of its local date. Spares the exact check (~0.5 us).
    sure_from: int = 0
    sure_to: int = -1

    def check(self, at: datetime, what: str = "at") -> None:
        """Raise :class:`EventValidationError` if the aware ``at`` is outside the window."""
        if self.sure_from <= at.toordinal() <= self.sure_to:
            return
        # An aware datetime's timestamp() is plain arithmetic: no overflow in years 1..9999.
        ts = at.timestamp()
        if ts < self.earliest:
            raise EventValidationError(
                f"{what}: {at.isoformat()} is before the earliest accepted time "
                f"{_iso_utc(self.earliest)} (TACT_EVENT_EARLIEST)")
        if ts > self.latest:
            raise EventValidationError(
                f"{what}: {at.isoformat()} is after the latest accepted time "
                f"{_iso_utc(self.latest)} (now + TACT_EVENT_MAX_AHEAD, "
                f"{str(self.max_ahead).removesuffix(', 0:00:00')})")


@dataclass(frozen=True, slots=True)
class EventBounds:
    """The configured range of ``at``: from ``earliest`` to ``max_ahead`` past the clock."""

    earliest: datetime = DEFAULT_EARLIEST
    max_ahead: timedelta = DEFAULT_MAX_AHEAD

    @classmethod
    def from_settings(cls, settings: TactSettings) -> EventBounds:
        return cls(settings.event_earliest, settings.event_max_ahead)

    def window(self, now: float | None = None) -> AtWindow:
        """The window at ``now`` (epoch seconds; default: the wall clock)."""
        now = time.time() if now is None else now
        earliest = self.earliest.timestamp()
        latest = float(int(now + self.max_ahead.total_seconds()))  # whole seconds: readable
        # the day after the earliest one's day, to the day before the latest one's day
        first = datetime.fromtimestamp(earliest, UTC).toordinal() + 2
        last = datetime.fromtimestamp(latest, UTC).toordinal() - 2
        return AtWindow(earliest, latest, self.max_ahead, first, last)


class _Refused(Exception):
    """A data value out of bounds; the path is collected on the way back up."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str] = []


def check_data(data: dict[str, Any]) -> None:
    """Raise :class:`EventValidationError` unless ``data`` keeps the bounds (module doc)."""
    try:
        _walk(data, 1)
    except _Refused as refused:
        path = "".join(reversed(refused.path))
        if len(path) > _PATH_SHOWN:
            path = path[:_PATH_SHOWN] + "..."
        raise EventValidationError(f"data{path}: {refused.problem}") from None
    try:
        size = len(orjson.dumps(data))
    except orjson.JSONEncodeError as exc:  # e.g. a lone surrogate in a string
        raise EventValidationError(f"data: not encodable as JSON ({exc})") from None
    if size > MAX_DATA_BYTES:
        raise EventValidationError(
            f"data: {size} bytes as compact JSON, over the limit of {MAX_DATA_BYTES}")


def _walk(value: Any, depth: int) -> None:
    # Strings, booleans and nulls, the bulk of event data, are skipped without a call.
    if isinstance(value, dict):
        if depth > MAX_DATA_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DATA_DEPTH} levels")
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Refused(f"key {_shown(repr(key))} is not a string")
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            try:
                _walk(item, depth + 1)
            except _Refused as refused:
                refused.path.append("." + _shown(key))
                raise
    elif isinstance(value, list | tuple):
        if depth > MAX_DATA_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DATA_DEPTH} levels")
        for index, item in enumerate(value):
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            try:
                _walk(item, depth + 1)
            except _Refused as refused:
                refused.path.append(f"[{index}]")
                raise
    elif isinstance(value, int):  # bool included: in range
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Refused(f"integer of {value.bit_length()} bits, "
                           "outside the signed 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused(f"{value!r} is not a finite number")
    elif not isinstance(value, str) and value is not None:
        raise _Refused(f"{type(value).__name__} is not a JSON value")


def _shown(key: str) -> str:
    """A key as shown in a reason: short, printable (reasons go to logs and headers)."""
    return "".join(c if c.isprintable() else "?" for c in key[:40])
