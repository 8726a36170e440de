"""Outcome totals in the real Redis: summed across writers and days, read by tact report."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import redis.asyncio as aredis
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.outcomes.aggregate import add_totals, read_totals
from engine.outcomes.view import uplift_section

_register()


async def _write_and_read(redis_url: str, prefix: str) -> dict[str, float]:
    client = aredis.Redis.from_url(redis_url)
    try:  # two workers' batches of the same day, and days in and out of the period
        await add_totals(client, prefix, {"2026-01-01": {"r|m|sent|touched": 2.0}})
        await add_totals(client, prefix, {"2026-01-01": {"r|m|sent|touched": 3.0},
                                          "2026-01-03": {"r|m|sent|converted": 1.0}})
        await add_totals(client, prefix, {"2026-02-01": {"r|m|sent|touched": 7.0}})
        assert await client.ttl(f"{prefix}report:2026-01-01") > 0
        return await read_totals(client, prefix, date(2026, 1, 1), date(2026, 1, 31))
    finally:
        await client.aclose()


def test_totals_add_up_across_writers_and_days(redis_url: str, prefix: str) -> None:
    got = asyncio.run(_write_and_read(redis_url, prefix))
    assert got == {"r|m|sent|touched": 5.0, "r|m|sent|converted": 1.0}
    out = CliRunner().invoke(app, ["report", "--since", "2026-01-01", "--until", "2026-01-31",
                                   "--format", "json", "--redis-url", redis_url,
                                   "--redis-prefix", prefix])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)["rows"]
    assert (row["rule"], row["touched"], row["converted"]) == ("r", 5.0, 1.0)
    assert row["conversion_rate"] == 0.2 and row["verdict"] == "no holdout"


async def _section(redis_url: str, prefix: str, today: date) -> dict[str, dict[str, object]]:
    client = aredis.Redis.from_url(redis_url)
    try:  # today, and ten days ago: in the 30-day period only
        await add_totals(client, prefix, {
            today.isoformat(): {"r|m|sent|touched": 40.0, "r|m|sent|converted": 12.0,
                                "r|m|holdout|touched": 30.0, "r|m|holdout|converted": 3.0},
            (today - timedelta(days=10)).isoformat(): {"r|m|sent|touched": 10.0}})
        return {period: await uplift_section(client, prefix, period, today)
                for period in ("today", "7d", "30d")}
    finally:
        await client.aclose()


def test_the_dashboard_section_reads_the_same_rows_as_tact_report(redis_url: str,
                                                                  prefix: str) -> None:
    today = datetime.now(UTC).date()
    got = asyncio.run(_section(redis_url, prefix, today))
    (row,) = got["7d"]["rows"]
    assert (row["touched"], row["converted"], row["holdout_touched"]) == (40.0, 12.0, 30.0)
    assert got["today"]["rows"] == got["7d"]["rows"]
    (month,) = got["30d"]["rows"]
    assert month["touched"] == 50.0
    first = today - timedelta(days=29)
    assert got["30d"]["since"] == first.isoformat()
    out = CliRunner().invoke(app, ["report", "--since", first.isoformat(), "--until",
                                   today.isoformat(), "--format", "json", "--redis-url",
                                   redis_url, "--redis-prefix", prefix])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["rows"] == got["30d"]["rows"]
