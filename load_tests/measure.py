"""The measurer: reads a system's output and dead-letter topics and joins them to the events.

It reads after the fact (the figures come from Kafka record timestamps, not from when the
measurer sees a record), so it never competes for CPU with the system under test:

* events: the producer's CreateTime of each event record (the generator's send time);
* outputs: the broker's LogAppendTime, because :func:`create_topics` creates the measured
  topics with ``message.timestamp.type=LogAppendTime``;
* the join is by event id: a decision's ``event_id`` (a passthrough copy's ``id``; a dead
  letter's ``value_b64`` decoded, or its own ``id``).

Reported: events in, events with a decision, dead letters, lost (= in - decided - dead
lettered), decisions, duplicate decision ids, throughput (events / (last output append -
first output append)) and latency (event CreateTime -> the append of its last decision):
p50, p95, p99, max. Standalone, e.g. after ``tact run`` consumed generated events::

    python -m load_tests.measure --events tact.events --decisions tact.decisions \\
        --dead-letter tact.dead-letter [--prefix g18c-] [--read-uncommitted]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Re-exported (``X as X``): the runners call them as measure.X.
from load_tests.topics import LOG_APPEND as LOG_APPEND
from load_tests.topics import Probe as Probe
from load_tests.topics import create_topics as create_topics
from load_tests.topics import delete_topics as delete_topics
from load_tests.topics import partitions_of as partitions_of

if TYPE_CHECKING:
    from load_tests.baselines import Proc, Target

console = Console(stderr=True)
if not console.is_terminal:
    console.width = 160  # logs and pipes: keep the table's columns readable


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn(
        "{task.completed:,.0f}/{task.total:,.0f}"), TimeElapsedColumn(), console=console,
        transient=True)


async def drain(probe: Probe, procs: list[Proc], t: Target, total: int, timeout: float,
                label: str, join_at: int = 0) -> str:
    """Wait until the group committed every event and the outputs stopped growing (1 s).
    ``procs`` not yet started start once ``join_at`` events are committed (a rebalance
    mid-stream). Returns drained, exited, stalled (no output for 60 s) or timeout."""
    outs = [t.output_topic, t.dead_letter_topic]
    t0 = last_change = time.monotonic()
    last_total = -1
    with progress() as bar:
        task = bar.add_task(label, total=total)
        while time.monotonic() - t0 < timeout:
            await asyncio.sleep(0.5)
            if not all(p.alive() for p in procs if p.popen is not None):
                return "exited"
            lag = await probe.lag(t.group, t.events_topic)
            done = total - lag if lag is not None else 0
            for p in procs:
                if p.popen is None and done >= join_at:
                    console.print(f"starting {p.target.worker_id} at {done:,} committed")
                    p.start()
            out_total = await probe.total(outs)
            bar.update(task, completed=done)
            now = time.monotonic()
            if out_total != last_total:
                last_change, last_total = now, out_total
            elif lag == 0 and now - last_change >= 1.0:
                return "drained"
            if out_total > 0 and now - last_change > 60:
                return "stalled"
    return "timeout"


# -- reading whole topics ----------------------------------------------------------------
async def scan(bootstrap: str, topic: str, *, committed: bool = True,
               idle_s: float = 3.0, max_s: float = 300.0) -> Any:
    """Yield (partition, offset, timestamp_ms, value) for every record now in ``topic``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            parts = await partitions_of(admin, topic)
        finally:
            await admin.close()
        if not parts:
            return
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        t0 = last = time.monotonic()
        while time.monotonic() - t0 < max_s and time.monotonic() - last < idle_s:
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= ends[tp] for pos, tp in zip(positions, parts, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            if batch:
                last = time.monotonic()
            for tp, records in batch.items():
                for r in records:
                    yield tp.partition, r.offset, r.timestamp, r.value
    finally:
        await consumer.stop()


def _doc(value: bytes | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _event_id(doc: dict[str, Any] | None) -> str | None:
    """The event id an output record answers: decision ``event_id``, copy ``id``, dead
    letter ``value_b64`` (the original event)."""
    if doc is None:
        return None
    eid = doc.get("event_id")
    if isinstance(eid, str):
        return eid
    raw = doc.get("value_b64")
    if isinstance(raw, str):
        try:
            return _event_id(_doc(base64.b64decode(raw)))
        except ValueError:
            return None
    eid = doc.get("id")
    return eid if isinstance(eid, str) else None


async def read_events(bootstrap: str, topic: str, prefix: str = "") -> dict[str, int]:
    """Event id -> producer CreateTime (ms), for the events whose id starts with ``prefix``."""
    out: dict[str, int] = {}
    async for _p, _o, ts, value in scan(bootstrap, topic, committed=False):
        eid = _event_id(_doc(value))
        if eid is not None and eid.startswith(prefix):
            out[eid] = ts
    return out


@dataclass
class Outputs:
    """What one system wrote, keyed by event id."""

    last_append: dict[str, int] = field(default_factory=dict)  # event id -> ms
    decisions: int = 0
    duplicate_ids: int = 0
    unjoined: int = 0
    dead_ids: set[str] = field(default_factory=set)
    dead_letters: int = 0
    dead_unjoined: int = 0
    first_ms: int = 0
    last_ms: int = 0
    records_by_partition: dict[int, int] = field(default_factory=dict)

    def stamp(self, ts: int) -> None:
        self.first_ms = ts if not self.first_ms else min(self.first_ms, ts)
        self.last_ms = max(self.last_ms, ts)


async def read_outputs(bootstrap: str, decisions_topic: str, dead_letter_topic: str | None,
                       events: Mapping[str, int], *, committed: bool = True) -> Outputs:
    out = Outputs()
    seen: set[str] = set()
    async for part, _o, ts, value in scan(bootstrap, decisions_topic, committed=committed):
        out.records_by_partition[part] = out.records_by_partition.get(part, 0) + 1
        doc = _doc(value)
        eid = _event_id(doc)
        if eid is None or eid not in events:
            out.unjoined += 1
            continue
        out.decisions += 1
        key = str(doc.get("id") if doc else None)
        if key in seen:
            out.duplicate_ids += 1
        seen.add(key)
        out.stamp(ts)
        if ts > out.last_append.get(eid, 0):
            out.last_append[eid] = ts
    if dead_letter_topic:
        async for _p, _o, ts, value in scan(bootstrap, dead_letter_topic, committed=committed):
            eid = _event_id(_doc(value))
            if eid is None or eid not in events:
                out.dead_unjoined += 1
                continue
            out.dead_letters += 1
            out.dead_ids.add(eid)
            out.stamp(ts)
    return out


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(events: Mapping[str, int], out: Outputs) -> dict[str, Any]:
    """The figures of one run (latencies in ms, throughput in events/s)."""
    decided = set(out.last_append)
    accounted = decided | out.dead_ids
    lat = sorted(float(out.last_append[e] - events[e]) for e in decided)
    span = (out.last_ms - out.first_ms) / 1000.0
    return {
        "events_in": len(events),
        "events_decided": len(decided),
        "dead_letters": out.dead_letters,
        "lost": len(events) - len(accounted),
        "decisions": out.decisions,
        "decisions_per_event": round(out.decisions / len(decided), 3) if decided else 0.0,
        "duplicate_decision_ids": out.duplicate_ids,
        "unjoined_records": out.unjoined + out.dead_unjoined,
        "drain_seconds": round(span, 3),
        "throughput_eps": round(len(accounted) / span) if span > 0 else 0,
        "latency_ms": {
            "p50": percentile(lat, 50), "p95": percentile(lat, 95),
            "p99": percentile(lat, 99), "max": lat[-1] if lat else 0.0,
            "mean": round(sum(lat) / len(lat), 2) if lat else 0.0,
        },
    }


async def measure(bootstrap: str, events_topic: str, decisions_topic: str,
                  dead_letter_topic: str | None, prefix: str = "",
                  committed: bool = True) -> dict[str, Any]:
    events = await read_events(bootstrap, events_topic, prefix)
    out = await read_outputs(bootstrap, decisions_topic, dead_letter_topic, events,
                             committed=committed)
    return summarize(events, out)


def show(res: dict[str, Any]) -> None:
    if "error" in res or res.get("status") != "drained":
        console.print(f"[red]{res.get('system')} {res.get('mode')}: {res.get('status')} "
                      f"{res.get('error', '')}[/]\n{res.get('log', '')}")
    lat = res.get("latency_ms", {})
    vis = res.get("visible_latency_ms") or {}
    console.print(f"{res.get('system')} {res.get('mode')}: {res.get('throughput_eps', 0):,} ev/s"
                  f", lost {res.get('lost')}, p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms"
                  f" (visible {vis.get('p50', '-')}, {vis.get('p99', '-')})")


def table(results: dict[str, Any]) -> Table:
    from load_tests.baselines import NAMES

    t = Table(title="Streaming load test")
    for col in ("system", "mode", "events", "ev/s", "dec/ev", "lost", "dead", "dup",
                "p50", "p95", "p99", "max ms", "vis p50", "vis p99", "redis calls"):
        t.add_column(col, justify="left" if col in ("system", "mode") else "right")
    for mode in ("max", "steady"):
        for s, r in (results.get(mode) or {}).items():
            lat = {**(r.get("latency_ms") or {}), **{
                f"v{k}": v for k, v in (r.get("visible_latency_ms") or {}).items()}}
            redis = r.get("redis") or {}
            per = "-"
            if redis.get("per_batch"):
                per = f"{redis['per_batch']['calls_total']:,.0f}/batch"
            elif redis.get("per_event"):
                per = f"{redis['per_event']['calls_total']:.2f}/event"
            t.add_row(f"({s}) {NAMES[s]}", mode, f"{r.get('events_in', 0):,}",
                      f"{r.get('throughput_eps', 0):,}", str(r.get("decisions_per_event")),
                      str(r.get("lost")), str(r.get("dead_letters")),
                      str(r.get("duplicate_decision_ids")),
                      *(str(lat.get(k, "-")) if mode == "steady" else "-"
                        for k in ("p50", "p95", "p99", "max", "vp50", "vp99")), str(per))
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--events", required=True, help="the events topic")
    p.add_argument("--decisions", required=True, help="the decisions (output) topic")
    p.add_argument("--dead-letter", default=None, help="the dead-letter topic")
    p.add_argument("--prefix", default="", help="only events whose id starts with this")
    p.add_argument("--read-uncommitted", action="store_true",
                   help="also count records of open or aborted transactions")
    a = p.parse_args(argv)
    res = asyncio.run(measure(a.brokers, a.events, a.decisions, a.dead_letter, a.prefix,
                              committed=not a.read_uncommitted))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
