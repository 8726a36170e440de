"""`tact report`: per rule and message, outcomes, conversions and the holdout's uplift;
and the experience KPIs (NPS, CSAT, CES) over the same period.

Reads the aggregates the workers keep in Redis (:mod:`engine.outcomes.aggregate`).
Exit status: 0 shown, 2 Redis failed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from engine.cli.worker import Prefix, RedisUrl
from engine.errors import TactError
from engine.outcomes.aggregate import KPI, ReportRow, columns, read_totals, report_rows
from engine.outcomes.kpis import BANDS, KPIS, KpiSummary, summaries

_console = Console()
_errors = Console(stderr=True)

Format = Literal["table", "json", "csv"]


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD) [default: 30 "
                                              "days before --until].")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, included (YYYY-MM-DD) "
                                              "[default: today, UTC].")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = "table",
    kpis_only: Annotated[bool, typer.Option("--kpis", help="Only the experience KPIs (the "
                                            "csv then holds them, one row per KPI).")] = False,
    redis_url: RedisUrl = None,
    redis_prefix: Prefix = "tact:",
) -> None:
    """Sent, delivered, opened, clicked, converted and value per rule and message; the
    holdout's conversion rate and the uplift with a 95% confidence interval; the experience
    KPIs (NPS, CSAT, CES) over the period."""
    try:
        last = date.fromisoformat(until) if until else datetime.now(UTC).date()
        first = date.fromisoformat(since) if since else last - timedelta(days=30)
    except ValueError as exc:
        raise typer.BadParameter(f"a day is YYYY-MM-DD: {exc}") from exc
    if first > last:
        raise typer.BadParameter("--since is after --until")
    totals, kpi_totals = _read(redis_url, redis_prefix, first, last)
    rows, kpis = report_rows(totals), summaries(kpi_totals)
    if fmt == "json":
        body: dict[str, object] = {"since": first.isoformat(), "until": last.isoformat()}
        if not kpis_only:
            body["rows"] = columns(rows)
        body["kpis"] = [k.as_dict() for k in kpis]
        typer.echo(json.dumps(body, indent=2))
    elif fmt == "csv":
        typer.echo(kpis_csv(kpis) if kpis_only else to_csv(rows), nl=False)
    else:
        if not kpis_only:
            _console.print(table(rows, first, last))
        _console.print(kpi_table(kpis, first, last))


def _read(redis_url: str | None, prefix: str, first: date,
          last: date) -> tuple[dict[str, float], dict[str, float]]:
    from engine.cli.state import _settings
    from engine.state.redis.client import client_from_settings

    async def go() -> tuple[dict[str, float], dict[str, float]]:
        client = client_from_settings(_settings(redis_url))
        try:
            return (await read_totals(client, prefix, first, last),
                    await read_totals(client, prefix, first, last, KPI))
        finally:
            await client.aclose()

    try:
        return asyncio.run(go())
    except (TactError, OSError) as exc:
        _errors.print(f"report failed: {exc}", highlight=False, markup=False)
        raise typer.Exit(2) from exc


def to_csv(rows: list[ReportRow]) -> str:
    data = columns(rows)
    out = io.StringIO()
    if data:
        writer = csv.DictWriter(out, fieldnames=list(data[0]))
        writer.writeheader()
        writer.writerows(data)
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def table(rows: list[ReportRow], first: date, last: date) -> Table:
    t = Table(title=f"outcomes {first.isoformat()} to {last.isoformat()}")
    for name in ("rule", "message", "sent", "delivered", "opened", "clicked", "converted",
                 "conv. rate", "value", "holdout rate", "uplift", "95% CI", "relative",
                 "verdict"):
        t.add_column(name, justify="left" if name in ("rule", "message", "verdict")
                     else "right")
    for r in rows:
        c, u = r.counts, r.uplift
        ci = "-" if u.low is None else f"{_pct(u.low)} to {_pct(u.high)}"
        t.add_row(r.rule, r.message, *(f"{c[k]:g}" for k in ("sent", "delivered", "opened",
                                                               "clicked", "converted")),
                  _pct(r.conversion_rate), f"{c['value']:g}", _pct(u.control_rate),
                  _pct(u.absolute), ci, _pct(u.relative), r.verdict)
    return t


KPI_COLUMNS = ("kpi", "responses", "value", "mean",
               *dict.fromkeys(b for k in KPIS for b in BANDS[k]))


def kpis_csv(kpis: list[KpiSummary]) -> str:
    """One row per KPI; a band another KPI has is left empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=KPI_COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(k.as_dict() for k in kpis)
    return out.getvalue()


_KPI_FORMAT = {"nps": "{:+.1f}", "csat": "{:.1f}%", "ces": "{:.2f}"}


def kpi_table(kpis: list[KpiSummary], first: date, last: date) -> Table:
    t = Table(title=f"experience KPIs {first.isoformat()} to {last.isoformat()}")
    for name in ("kpi", "value", "answers", "bands"):
        t.add_column(name, justify="left" if name in ("kpi", "bands") else "right")
    shown = {"nps": "NPS", "csat": "CSAT (% satisfied)", "ces": "CES (mean)"}
    for k in kpis:
        value = "-" if k.value is None else _KPI_FORMAT[k.kpi].format(k.value)
        bands = ", ".join(f"{b} {n:g}" for b, n in k.bands.items()) if len(k.bands) > 1 else ""
        t.add_row(shown[k.kpi], value, f"{k.responses:g}", bands)
    if not kpis:
        t.add_row("-", "-", "0", "no answers in this period")
    return t
