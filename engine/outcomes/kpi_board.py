"""The live dashboard's experience KPIs: today, the last 7 and the last 30 days (UTC), from
the per-day answers in Redis (:mod:`engine.outcomes.aggregate`), so they sum across
workers and survive restarts. Read at most every few seconds, whatever the polling."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from engine.errors import TactError
from engine.outcomes.aggregate import KPI, Totals, read_days
from engine.outcomes.kpis import summaries

if TYPE_CHECKING:
    from engine.state.redis.client import AnyRedis

PERIODS = (("today", 1), ("7d", 7), ("30d", 30))  # name, days ending today
Periods = dict[str, list[dict[str, object]]]  # period -> its KPIs (KpiSummary.as_dict)


async def kpi_periods(client: AnyRedis, prefix: str, today: date) -> Periods:
    """Each period's KPIs (one Redis round trip for all of them)."""
    longest = max(n for _, n in PERIODS)
    per_day = await read_days(client, prefix, today - timedelta(days=longest - 1), today, KPI)
    out: Periods = {}
    for name, n in PERIODS:
        totals: Totals = {}
        for fields in per_day[-n:]:
            for stat, amount in fields.items():
                totals[stat] = totals.get(stat, 0.0) + amount
        out[name] = [s.as_dict() for s in summaries(totals)]
    return out


class KpiBoard:
    """The dashboard's KPI section, read again once ``ttl`` seconds have passed."""

    def __init__(self, client: AnyRedis, prefix: str, ttl: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.clock = clock
        self._read_at = float("-inf")
        self._section: dict[str, Any] = {}

    async def section(self) -> dict[str, Any]:
        """``{"periods": {today, 7d, 30d}}``, or ``{"error": ...}`` when Redis failed."""
        now = self.clock()
        if now - self._read_at < self.ttl:
            return self._section
        today = datetime.fromtimestamp(now, UTC).date()
        try:
            self._section = {"periods": await kpi_periods(self.client, self.prefix, today)}
        except TactError as exc:  # the dashboard shows it; the next read tries again
            self._section = {"error": f"reading the KPIs failed: {exc}"}
        self._read_at = now
        return self._section
