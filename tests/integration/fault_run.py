"""Run a fault plan against a private stack, then judge it against embedded mode.

:func:`run` seeds the customers through the changelog, starts the worker, and produces
each phase (:mod:`tests.integration.fault_load`) at the plan's steady rate, stopping only
to apply a fault at its point (a worker SIGKILL is followed at once by the next worker; a
broker restart holds the producer until the broker is back). A phase ends once the group
committed all of it; then its tick record is appended and committed, before the next
phase's first event, so embedded mode can be given the same order (events, tick, events).

:func:`judge` compares what the worker committed with what embedded mode decides for the
same events and ticks: each decision id once and byte-for-byte equal, every invalid event
one dead letter, every customer's final state in Redis equal; and the probes' outcomes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.embedded import Engine
from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.state.memory import MemoryStateStore
from engine.state.redis.store import RedisStateStore
from engine.worker.followups import tick_records
from tests.integration.fault_load import Phase, Plan, customers, phases, probe_names
from tests.integration.fault_stack import PrivateStack, Workers
from tests.integration.kafka_utils import (
    REPO,
    WorkerNames,
    after,
    partition_of,
    read_committed,
    seed_states,
    wait_committed,
)

CHUNK = 25  # records per send burst
PARTITIONS = 3


@dataclass
class Run:
    """What happened: the records as produced (with their metadata), the worker's output."""

    plan: Plan
    names: WorkerNames
    start: dict[str, CustomerState]
    phases: list[Phase]
    sent: list[list[Any]] = field(default_factory=list)  # per phase, record metadata
    decisions: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, CustomerState] = field(default_factory=dict)
    timeline: list[str] = field(default_factory=list)
    produce_s: float = 0.0
    total_s: float = 0.0
    exit_code: int | None = None
    rss: list[str] = field(default_factory=list)


async def _fault(name: str, stack: PrivateStack, workers: Workers) -> None:
    if name == "worker_kill":
        workers.kill()
    elif name == "kafka_restart":
        await asyncio.to_thread(stack.restart_kafka)
    elif name == "redis_kill":
        await asyncio.to_thread(stack.kill_redis)
    elif name == "flushall":
        await asyncio.to_thread(stack.flushall)
    else:
        raise ValueError(f"unknown fault {name!r}")


async def run(stack: PrivateStack, plan: Plan, log: Path, *, commit_timeout: float = 120.0,
              read_timeout: float = 60.0, sample_every: float = 1.0,
              say: Callable[[str], None] = print) -> Run:
    """Produce the plan's phases with their faults; what the worker committed and stored.
    ``commit_timeout``: per wait for the group's commits; ``read_timeout``: for reading the
    decisions and dead letters back; ``sample_every``: seconds between RSS samples."""
    names = WorkerNames.new("faults", stack.conn.bootstrap_servers, stack.conn.redis_url)
    out = Run(plan, names, customers(plan), phases(plan))
    t0 = time.monotonic()

    def note(what: str) -> None:
        line = f"{time.monotonic() - t0:7.1f} s  {what}"
        out.timeline.append(line)
        say(line)

    await seed_states(names, out.start.values(), PARTITIONS)
    workers = Workers(names, log, sample_every=sample_every)
    w = workers.start()
    await w.wait_ready(timeout=60)
    note(f"seeded {len(out.start)} customers; worker ready")
    producer = AIOKafkaProducer(bootstrap_servers=names.bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5,
                                request_timeout_ms=120_000)
    await producer.start()
    try:
        for phase in out.phases:
            sent, seconds = await _phase(phase, plan, producer, stack, workers, note,
                                         commit_timeout)
            out.sent.append(sent)
            out.produce_s += seconds
        out.decisions = [orjson.loads(r.value)
                         for r in await read_committed(names.bootstrap, names.decisions,
                                                       read_timeout)]
        out.dead_letters = [orjson.loads(r.value) for r in
                            await read_committed(names.bootstrap, names.dead_letter,
                                                 read_timeout)]
        out.exit_code = workers.stop()
        note(f"worker stopped ({out.exit_code}); {len(out.decisions)} decisions, "
             f"{len(out.dead_letters)} dead letters")
        out.stored = await _stored(names, list(out.start))
    finally:
        workers.stop()
        await producer.stop()
        out.rss = workers.rss_report()
    out.total_s = time.monotonic() - t0
    return out


async def _phase(phase: Phase, plan: Plan, producer: AIOKafkaProducer, stack: PrivateStack,
                 workers: Workers, note: Callable[[str], None], timeout: float
                 ) -> tuple[list[Any], float]:
    """Produce one phase with its faults, wait for all of it, then its tick; the records'
    metadata and the seconds spent producing (faults included)."""
    names = workers.names
    sent: list[Any] = []
    stops = sorted({i for i, _ in phase.faults} | {phase.setup_end, len(phase.records)})
    pending = {i: [f for j, f in phase.faults if j == i] for i, _ in phase.faults}
    started = time.monotonic()
    paused = 0.0  # the broker's restart: the steady pace resumes after it, without a burst
    done = 0
    background: list[asyncio.Task[None]] = []

    async def apply(name: str, at: int) -> None:
        t = time.monotonic()
        await _fault(name, stack, workers)
        note(f"phase {phase.index}: {name} at record {at} ({time.monotonic() - t:.1f} s)")

    for stop in stops:
        for name in pending.get(done, ()):
            # the probes' set-up is committed: that state is what the fault must not lose
            await wait_committed(names.bootstrap, names.group, after(sent[:phase.setup_end]),
                                 timeout)
            if name == "kafka_restart":  # nothing can be produced meanwhile
                t = time.monotonic()
                await apply(name, done)
                paused += time.monotonic() - t
            else:  # the load goes on through a Redis outage, a flush, a worker restart
                background.append(asyncio.create_task(apply(name, done)))
                await asyncio.sleep(0)  # started before the next record is sent
        for i in range(done, stop, CHUNK):
            chunk = phase.records[i:min(i + CHUNK, stop)]
            futures = [await producer.send(names.events, r.value, key=r.key,
                                           headers=[("tact-received", r.received.encode())])
                       for r in chunk]
            sent.extend(await asyncio.gather(*futures))
            ahead = started + paused + len(sent) / plan.rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        done = stop
    for task in background:
        await task
    produced = time.monotonic()
    await wait_committed(names.bootstrap, names.group, after(sent), timeout)
    ticks = [await producer.send_and_wait(f"{names.events}.ticks", value, partition=p)
             for p, value in tick_records(phase.tick_now, range(PARTITIONS))]
    await wait_committed(names.bootstrap, names.group, after(ticks), timeout)
    note(f"phase {phase.index}: {len(sent)} events in {produced - started:.1f} s "
         f"({len(sent) / max(produced - started, 1e-9):.0f}/s), all committed "
         f"{time.monotonic() - produced:.1f} s later, tick done")
    return sent, produced - started


async def _stored(names: WorkerNames, wanted: list[str]) -> dict[str, CustomerState]:
    settings = names.settings(events_partitions=PARTITIONS)
    store = RedisStateStore.from_settings(settings, prefix=names.prefix)
    stored: dict[str, CustomerState] = {}
    try:
        for p in range(PARTITIONS):
            mine = [c for c in wanted if partition_of(c, PARTITIONS) == p]
            stored.update(await store.load(mine, p))
    finally:
        await store.close()
    return stored


@dataclass
class Expected:
    decisions: dict[str, dict[str, Any]]
    invalid: set[tuple[int, int]]
    final: dict[str, CustomerState]


async def expected(out: Run) -> Expected:
    """What embedded mode decides for the same events and ticks, in the same order."""
    mem = MemoryStateStore()
    for st in out.start.values():
        mem.seed(st)
    engine = Engine(load_pack(REPO / "rules"), mem)
    decisions: dict[str, dict[str, Any]] = {}
    invalid: set[tuple[int, int]] = set()
    for phase, sent in zip(out.phases, out.sent, strict=True):
        batch: list[Envelope] = []
        for rec, meta in zip(phase.records, sent, strict=True):
            try:
                ev = parse_event(rec.value)
            except Exception:
                invalid.add((meta.partition, meta.offset))
                continue
            batch.append(Envelope(ev, datetime.fromisoformat(rec.received).timestamp()))
        for result in (await engine.process(batch), await engine.tick(phase.tick_now)):
            for d in [*result.decisions, *result.ticked]:
                decisions[d.id] = orjson.loads(d.to_json())
    return Expected(decisions, invalid, await mem.load(list(out.start)))


def _wire(st: CustomerState) -> list[Any]:
    wire = st.to_wire()
    return [*wire[:2], *wire[3:]]  # less the write count


def judge(out: Run, exp: Expected) -> tuple[dict[str, int], list[str]]:
    """Figures (lost, duplicate, ...) and the problems found, each a sentence."""
    ids = Counter(d["id"] for d in out.decisions)
    got = {d["id"]: d for d in out.decisions}
    dl = Counter((d["source"]["partition"], d["source"]["offset"]) for d in out.dead_letters)
    figures = {
        "events": sum(len(s) for s in out.sent),
        "decisions": len(got),
        "expected_decisions": len(exp.decisions),
        "lost_decisions": len(exp.decisions.keys() - got.keys()),
        "unexpected_decisions": len(got.keys() - exp.decisions.keys()),
        "duplicate_decision_ids": sum(1 for c in ids.values() if c > 1),
        "differing_decisions": sum(1 for i, d in got.items()
                                   if i in exp.decisions and exp.decisions[i] != d),
        "dead_letters": len(dl),
        "lost_dead_letters": len(exp.invalid - dl.keys()),
        "unexpected_dead_letters": len(dl.keys() - exp.invalid),
        "duplicate_dead_letters": sum(1 for c in dl.values() if c > 1),
        "lost_states": sum(1 for c in exp.final if c not in out.stored),
        "differing_states": sum(1 for c, st in exp.final.items()
                                if c in out.stored and _wire(out.stored[c]) != _wire(st)),
    }
    problems = [f"{k}: {v}" for k, v in figures.items()
                if v and k not in ("events", "decisions", "expected_decisions", "dead_letters")]
    for k, phase in enumerate(out.phases):
        what = "+".join(f for _, f in phase.faults) or "no fault"
        problems += [f"phase {k} ({what}): {p}" for p in _probe_problems(k, out.decisions)]
    return figures, problems


def _probe_problems(k: int, decisions: list[dict[str, Any]]) -> list[str]:
    consent, cap, fu = probe_names(k)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for d in decisions:
        by_event.setdefault(d["event_id"], []).append(d)
    out = []
    shipped = {(d["channel"], d["outcome"]) for d in by_event.get(f"p{k}-ship", [])}
    if shipped != {("push", "sent"), ("email", "sent")}:
        out.append(f"{consent} consented before the fault, after it got {sorted(shipped)}")
    before = [d["outcome"] for i in (1, 2) for d in by_event.get(f"p{k}-price-{i}", [])]
    third = [(d["outcome"], d["reasons"]) for d in by_event.get(f"p{k}-price-3", [])]
    if before != ["sent", "sent"] or third != [("suppressed", ["frequency_cap"])]:
        out.append(f"{cap}: pushes before the fault {before}, the third after it {third}")
    reminders = [d["outcome"] for d in decisions
                 if d["customer"] == fu and d["rule"] == "cart_reminder"]
    if reminders != ["sent"]:
        out.append(f"{fu}'s cart reminder, pending over the fault: {reminders}")
    return out
