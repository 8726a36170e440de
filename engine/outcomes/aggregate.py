"""Outcome aggregates in Redis, summed across workers, and the report's rows.

Keys (``prefix`` as the state's, ``tact:`` by default)::

    {prefix}report:<YYYY-MM-DD>   hash: "rule|message|group|metric" -> amount (HINCRBYFLOAT)
    {prefix}kpi:<YYYY-MM-DD>      hash: "kpi|band" -> answers, "kpi|sum" -> sum of scores

The day is the UTC day of the event (of the decision, for ``sent``). Metrics: ``sent``
(decisions sent), ``delivered``, ``opened``, ``clicked``, ``failed`` (outcome events),
``touched`` (moments a goal-bearing message was sent, or held out, per group),
``converted`` and ``value``. Ids are ``[a-z0-9_]``, so ``|`` cannot occur in them. The
experience KPIs' answers (:mod:`engine.outcomes.kpis`) go in a hash of their own per day,
in the same round trip.

The worker adds a batch's totals after its Kafka transaction committed
(:meth:`engine.worker.process.BatchProcessor.apply`): they survive restarts and are
never counted twice (a committed batch is not run again), but a crash between the commit
and this write loses that batch's counts; the report is a lower bound, close in practice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING

from engine.outcomes.stats import Uplift, rate, uplift
from engine.state.redis.client import redis_errors

if TYPE_CHECKING:
    from engine.pipeline.core import BatchResult
    from engine.state.redis.client import AnyRedis

Totals = dict[str, float]  # "rule|message|group|metric" -> amount
KEEP_DAYS = 400  # a day's hash expires this long after its last write


def day_of(epoch_day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=epoch_day)).isoformat()


def batch_totals(result: BatchResult) -> dict[str, Totals]:
    """A batch's outcome facts and sent decisions, by day (ISO date)."""
    out: dict[str, Totals] = {}
    for (day, rule, message, group, metric), amount in result.facts.items():
        fields = out.setdefault(day_of(day), {})
        key = f"{rule}|{message}|{group}|{metric}"
        fields[key] = fields.get(key, 0.0) + amount
    for d in (*result.decisions, *result.ticked):
        if d.outcome == "sent":
            fields = out.setdefault(d.decided_at.astimezone(UTC).date().isoformat(), {})
            key = f"{d.rule}|{d.message}|sent|sent"
            fields[key] = fields.get(key, 0.0) + 1
    return out


def kpi_totals(result: BatchResult) -> dict[str, Totals]:
    """A batch's experience KPI answers, by day (ISO date): "kpi|stat" -> amount."""
    out: dict[str, Totals] = {}
    for (day, kpi, stat), amount in result.kpis.items():
        fields = out.setdefault(day_of(day), {})
        fields[f"{kpi}|{stat}"] = fields.get(f"{kpi}|{stat}", 0.0) + amount
    return out


REPORT, KPI = "report", "kpi"  # the two kinds of daily hash


def report_key(prefix: str, day: str, kind: str = REPORT) -> str:
    return f"{prefix}{kind}:{day}"


async def add_totals(client: AnyRedis, prefix: str, totals: dict[str, Totals],
                     kpis: dict[str, Totals] | None = None) -> None:
    """Add a batch's totals and KPI answers (one round trip)."""
    if not totals and not kpis:
        return
    pipe = client.pipeline(transaction=False)
    for kind, by_day in ((REPORT, totals), (KPI, kpis or {})):
        for day, fields in by_day.items():
            key = report_key(prefix, day, kind)
            for name, amount in fields.items():
                pipe.hincrbyfloat(key, name, amount)
            pipe.expire(key, KEEP_DAYS * 86400)
    with redis_errors("report"):
        await pipe.execute()


def days(since: date, until: date) -> list[str]:
    """Every day from ``since`` to ``until``, both included."""
    return [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]


async def read_totals(client: AnyRedis, prefix: str, since: date, until: date,
                      kind: str = REPORT) -> Totals:
    """The totals (``kind`` KPI: the KPI answers) summed over the days from ``since`` to
    ``until``."""
    out: Totals = {}
    for fields in await read_days(client, prefix, since, until, kind):
        for name, amount in fields.items():
            out[name] = out.get(name, 0.0) + amount
    return out


async def read_days(client: AnyRedis, prefix: str, since: date, until: date,
                    kind: str = REPORT) -> list[Totals]:
    """Each day's totals from ``since`` to ``until``, in order (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for day in days(since, until):
        pipe.hgetall(report_key(prefix, day, kind))
    with redis_errors("report"):
        found = await pipe.execute()
    return [{(k.decode() if isinstance(k, bytes) else str(k)): float(v)
             for k, v in fields.items()} for fields in found]


METRICS = ("sent", "delivered", "opened", "clicked", "failed")


@dataclass(frozen=True, slots=True)
class ReportRow:
    rule: str
    message: str
    counts: dict[str, float]  # METRICS, plus touched/converted/value per group
    uplift: Uplift

    @property
    def conversion_rate(self) -> float | None:
        return rate(self.counts["converted"], self.counts["touched"])

    @property
    def verdict(self) -> str:
        """The uplift's verdict; "no goal" for a message sent without any goal touch
        (no goal to convert, so nothing to compare)."""
        counts = self.counts
        if counts["touched"] == 0 and counts["holdout_touched"] == 0 and counts["sent"] > 0:
            return "no goal"
        return self.uplift.verdict

    def as_dict(self) -> dict[str, object]:
        u = self.uplift
        return {"rule": self.rule, "message": self.message, **self.counts,
                "conversion_rate": self.conversion_rate, "holdout_rate": u.control_rate,
                "uplift_abs": u.absolute, "uplift_rel": u.relative, "ci_low": u.low,
                "ci_high": u.high, "verdict": self.verdict}


def report_rows(totals: Totals) -> list[ReportRow]:
    """One row per (rule, message) in ``totals``, sorted by rule then message."""
    per: dict[tuple[str, str], dict[str, float]] = {}
    for name, amount in totals.items():
        parts = name.split("|")
        if len(parts) != 4:
            continue  # not a field this release writes
        rule, message, group, metric = parts
        prefix = "holdout_" if group == "holdout" else ""
        counts = per.setdefault((rule, message), {})
        counts[prefix + metric] = counts.get(prefix + metric, 0.0) + amount
    rows = []
    for (rule, message), counts in sorted(per.items()):
        full = {k: counts.get(k, 0.0) for k in (*METRICS, "touched", "converted", "value",
                                                 "holdout_touched", "holdout_converted",
                                                 "holdout_value")}
        u = uplift(full["converted"], full["touched"], full["holdout_converted"],
                   full["holdout_touched"])
        rows.append(ReportRow(rule, message, full, u))
    return rows


def columns(rows: Iterable[ReportRow]) -> list[dict[str, object]]:
    return [r.as_dict() for r in rows]


class ReportWriter:
    """Adds committed batches' totals to Redis (the worker's, after each commit)."""

    def __init__(self, client: AnyRedis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    async def add(self, result: BatchResult) -> None:
        """Raises :class:`~engine.errors.StateStoreError` when Redis fails."""
        totals, kpis = batch_totals(result), kpi_totals(result)
        if totals or kpis:
            await add_totals(self.client, self.prefix, totals, kpis)
