"""The live dashboard's "Did it work?" section: the report's rows over a chosen period.

One computation for ``tact report`` and the dashboard: both read the per-day totals the
workers add up in Redis (:func:`engine.outcomes.aggregate.read_totals`) and turn them into
rows with :func:`~engine.outcomes.aggregate.report_rows` (uplift from
:mod:`engine.outcomes.stats`). Reading from Redis, the section survives restarts and sums
across workers. Periods end today (UTC, the day of the totals' keys), both ends included.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import TactError
from engine.outcomes.aggregate import columns, read_totals, report_rows

if TYPE_CHECKING:
    from engine.state.redis.client import AnyRedis

#: period name -> days it covers, ending today
PERIODS = {"today": 1, "7d": 7, "30d": 30}
DEFAULT_PERIOD = "7d"


class UnknownPeriodError(TactError):
    """The uplift section was asked for a period it does not offer."""


def period_range(period: str, today: date) -> tuple[date, date]:
    """The first and last day of ``period`` (one of :data:`PERIODS`)."""
    n = PERIODS.get(period)
    if n is None:
        raise UnknownPeriodError(f"unknown period {period!r}: use one of {', '.join(PERIODS)}")
    return today - timedelta(days=n - 1), today


async def uplift_section(client: AnyRedis, prefix: str, period: str, today: date
                         ) -> dict[str, Any]:
    """The section's JSON: the period, its days, and one row per rule and message with the
    same fields as ``tact report --format json``. Raises :class:`UnknownPeriodError`, and
    :class:`~engine.errors.StateStoreError` when Redis fails."""
    since, until = period_range(period, today)
    rows = report_rows(await read_totals(client, prefix, since, until))
    return {"period": period, "since": since.isoformat(), "until": until.isoformat(),
            "rows": columns(rows)}
