"""Experience KPI answers in the real Redis: written after a batch like the report totals,
summed across writers and days, read back by tact report and the dashboard's periods."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import redis.asyncio as aredis
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.outcomes.aggregate import ReportWriter
from engine.outcomes.kpi_board import KpiBoard
from engine.pipeline.core import BatchResult

_register()

TODAY = datetime.now(UTC).date()
EPOCH = date(1970, 1, 1)


def _day(d: date) -> int:
    return (d - EPOCH).days


def _answers(d: date, scores: list[int]) -> BatchResult:
    """What the core gives for these NPS answers on day ``d`` (bands by the textbook)."""
    out = BatchResult()
    for s in scores:
        name = "promoter" if s >= 9 else "passive" if s >= 7 else "detractor"
        out.kpis[(_day(d), "nps", name)] = out.kpis.get((_day(d), "nps", name), 0.0) + 1
        out.kpis[(_day(d), "nps", "sum")] = out.kpis.get((_day(d), "nps", "sum"), 0.0) + s
    return out


def _nps(scores: list[int]) -> float:
    n = len(scores)
    return 100 * sum(s >= 9 for s in scores) / n - 100 * sum(s <= 6 for s in scores) / n


TODAY_A, TODAY_B = [10, 9, 3, 7], [0, 10, 10]  # two workers' batches today
WEEK = [6, 6, 9]  # three days ago
MONTH = [2, 8]  # twenty days ago
OLD = [10, 10]  # forty days ago: in no period


async def _write(redis_url: str, prefix: str) -> dict[str, object]:
    client = aredis.Redis.from_url(redis_url)
    try:
        worker_a, worker_b = ReportWriter(client, prefix), ReportWriter(client, prefix)
        await worker_a.add(_answers(TODAY, TODAY_A))
        await worker_b.add(_answers(TODAY, TODAY_B))
        await worker_a.add(_answers(TODAY - timedelta(days=3), WEEK))
        await worker_b.add(_answers(TODAY - timedelta(days=20), MONTH))
        await worker_a.add(_answers(TODAY - timedelta(days=40), OLD))
        assert await client.ttl(f"{prefix}kpi:{TODAY.isoformat()}") > 0
        return await KpiBoard(client, prefix).section()
    finally:
        await client.aclose()


def test_kpi_answers_sum_across_writers_and_days(redis_url: str, prefix: str) -> None:
    section = asyncio.run(_write(redis_url, prefix))
    periods = section["periods"]
    assert isinstance(periods, dict)
    expected = {"today": TODAY_A + TODAY_B, "7d": TODAY_A + TODAY_B + WEEK,
                "30d": TODAY_A + TODAY_B + WEEK + MONTH}
    for period, scores in expected.items():
        (nps,) = periods[period]
        assert nps["responses"] == len(scores), period
        assert abs(nps["value"] - _nps(scores)) < 1e-9, period
        assert abs(nps["mean"] - sum(scores) / len(scores)) < 1e-9, period

    since = (TODAY - timedelta(days=45)).isoformat()
    out = CliRunner().invoke(app, ["report", "--since", since, "--format", "json",
                                   "--redis-url", redis_url, "--redis-prefix", prefix])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["rows"] == []  # no outcome totals were written: KPIs are kept apart
    (nps,) = body["kpis"]
    everything = TODAY_A + TODAY_B + WEEK + MONTH + OLD
    assert (nps["kpi"], nps["responses"]) == ("nps", len(everything))
    assert abs(nps["value"] - _nps(everything)) < 1e-9
    assert nps["promoter"] == sum(s >= 9 for s in everything)

    out = CliRunner().invoke(app, ["report", "--since", since, "--format", "csv", "--kpis",
                                   "--redis-url", redis_url, "--redis-prefix", prefix])
    assert out.exit_code == 0, out.output
    header, row = out.output.splitlines()
    assert header.startswith("kpi,responses,value") and row.startswith(f"nps,{len(everything)}.0,")
