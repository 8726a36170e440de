"""The dashboard's uplift section: the periods it offers (the Redis read is tested against
the real Redis in tests/integration/test_outcome_report_redis.py)."""

from __future__ import annotations

from datetime import date

import pytest

from engine.errors import TactError
from engine.outcomes.view import PERIODS, UnknownPeriodError, period_range

TODAY = date(2026, 3, 1)  # after a short February: the period crosses a month


@pytest.mark.parametrize(("period", "first"), [
    ("today", date(2026, 3, 1)), ("7d", date(2026, 2, 23)), ("30d", date(2026, 1, 31))])
def test_a_period_ends_today_and_covers_its_days(period: str, first: date) -> None:
    assert period_range(period, TODAY) == (first, TODAY)
    assert (TODAY - first).days + 1 == PERIODS[period]


@pytest.mark.parametrize("period", ["", "week", "7", "7D", "365d"])
def test_an_unknown_period_says_which_are_offered(period: str) -> None:
    with pytest.raises(UnknownPeriodError, match="today, 7d, 30d") as info:
        period_range(period, TODAY)
    assert isinstance(info.value, TactError)
