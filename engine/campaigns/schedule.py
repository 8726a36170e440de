"""When a campaign runs, and what names a run.

A run is one (campaign, scheduled instant) pair; its id, ``<campaign>@<UTC instant>``, is
the same whoever works it out, so starting a run twice is starting the same run. Pure: no
clock is read here, the caller says what time it is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from engine.dsl.calendar import instant, parse_datetime, zone

__all__ = [
    "CAMPAIGN_DATA", "CAMPAIGN_EVENT", "MAX_RATE", "Schedule", "campaign_event_id", "parse_rate",
    "run_id", "run_time",
]

#: The built-in event type a run makes, one per customer, and its data's fields.
CAMPAIGN_EVENT = "campaign"
CAMPAIGN_DATA = {"campaign": "str", "run": "str"}
MAX_RATE = 1_000_000.0  # customers per second: beyond it the number is a typo
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RUN_STAMP = "%Y%m%dT%H%M%SZ"
_MAX_EVENT_ID = 200  # the event id pattern's bound (engine.models.event)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Once at ``at`` (epoch seconds), or on a five-field ``cron`` read in ``tz``."""

    at: float | None
    cron: str | None
    tz: str

    @classmethod
    def parse(cls, at: object, cron: str | None, tz: str) -> Schedule:
        """A checked schedule; raises ValueError with a reason for the author."""
        zone(tz)  # an unknown zone names the closest
        if (at is None) == (cron is None):
            raise ValueError("a schedule needs exactly one of 'at' or 'cron'")
        if cron is not None:
            fields = cron.split()
            if len(fields) != 5:
                raise ValueError(
                    f"cron {cron!r} has {len(fields)} fields; expected 5 "
                    "(minute hour day-of-month month day-of-week, e.g. '0 10 * * FRI')"
                )
            try:
                croniter(cron)
            except ValueError as exc:  # croniter's errors are ValueErrors
                raise ValueError(f"invalid cron {cron!r}: {exc}") from None
            return cls(None, cron, tz)
        return cls(instant(parse_datetime(at), zone(tz)), None, tz)

    def latest(self, now: float) -> float | None:
        """The latest scheduled instant at or before ``now`` (None: none yet)."""
        if self.at is not None:
            return self.at if self.at <= now else None
        tz = zone(self.tz)
        # croniter's get_prev is strict: start a second later so a run due exactly now counts
        it = croniter(str(self.cron), datetime.fromtimestamp(now + 1, tz))
        return float(it.get_prev(float))

    def next(self, after: float) -> float | None:
        """The first scheduled instant strictly after ``after`` (None: no more runs)."""
        if self.at is not None:
            return self.at if self.at > after else None
        it = croniter(str(self.cron), datetime.fromtimestamp(after, zone(self.tz)))
        return float(it.get_next(float))

    def describe(self) -> str:
        if self.at is not None:
            return f"at {datetime.fromtimestamp(self.at, zone(self.tz)).isoformat()}"
        return f"cron '{self.cron}' ({self.tz})"


def run_id(campaign: str, scheduled: float) -> str:
    """The run of ``campaign`` scheduled at ``scheduled``: ``weekend@20261127T090000Z``."""
    return f"{campaign}@{datetime.fromtimestamp(scheduled, UTC).strftime(_RUN_STAMP)}"


def run_time(run: str) -> tuple[str, float]:
    """(campaign, scheduled instant) of a run id; raises ValueError on anything else."""
    campaign, sep, stamp = run.partition("@")
    if not sep or not campaign:
        raise ValueError(f"not a campaign run id: {run!r}")
    try:
        return campaign, datetime.strptime(stamp, _RUN_STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"not a campaign run id: {run!r}") from None


def campaign_event_id(run: str, customer: str) -> str:
    """The id of the one event a run makes for ``customer``: re-emitting it after a crash
    gives the same id, so the same decision ids, and the worker sees a duplicate."""
    readable = f"{run}/{customer}"
    if len(readable) <= _MAX_EVENT_ID:
        return readable
    digest = hashlib.blake2b(customer.encode(), digest_size=16).hexdigest()
    return f"{run}/h{digest}"


def parse_rate(value: str | int) -> float:
    """Customers per second from '500/s', '20000/m', '1000/h' or a number per second."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate such as '500/s', got {value!r}")
    if isinstance(value, int):
        rate = float(value)
    else:
        match = _RATE.match(value)
        if match is None:
            raise ValueError(f"expected a rate such as '500/s', '20000/m' or '1000/h', "
                             f"got {value!r}")
        rate = float(match.group(1)) / _PER[match.group(2)]
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate {value!r} is out of range: more than 0 and at most "
                         f"{MAX_RATE:g} per second")
    return rate
