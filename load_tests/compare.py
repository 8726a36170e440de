"""Streaming load test: (a) raw passthrough, (b) plain Faust agent, (c) Tact's worker.

Same broker, same Redis, same events, one run; each system is its own subprocess on fresh
topics, with its own consumer group, reading from the earliest offset::

    python -m load_tests.compare --quick            # ~2.5 min: small runs of everything
    python -m load_tests.compare                    # 300k events, 20 s at 5,000/s (~10 min)
    python -m load_tests.compare --only c --mode steady --rate 5000 --duration 20
    python -m load_tests.compare --scale-out        # two `tact run` in one group

Modes: ``max`` pre-produces all events to one topic (6 partitions), then runs each system on
it: throughput = events / (last output append - first output append). ``steady`` runs
each system on its own topic while the generator produces live at ``--rate``: latency from
the event's CreateTime to its last decision's LogAppendTime, and to visibility (when a
``read_committed`` consumer tailing the output receives it: the transaction commit counts),
p50/p95/p99/max; CPU per event over the live window. Redis state lives in a dedicated
database (``--redis-url``, db 13), flushed before each system's run. Prints tables; the
last line is one JSON object (figures, ``ratios``, ``goals``: see load_tests/goals.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redis import Redis

from load_tests import goals as G
from load_tests import measure as M
from load_tests import redis_stats as R
from load_tests.baselines import NAMES, Proc, Target, free_port, machine_cpu
from load_tests.generator import Produced, generate_events, produce
from load_tests.goals import ratio
from load_tests.measure import console, progress, show, table
from load_tests.visibility import Tailer, latency_stats, visibility_latencies

# Round trips that are not per batch: connection set-up, the follow-up timer's
# ZRANGEBYSCORE (one per partition per second, whatever the load), the pending follow-ups
# gauge's ZCARD pipeline (RedisStateStore.pending_followups, on the metrics' schedule) and
# the wipe of a partition rebuilt from the changelog when the worker first owns it (SCAN,
# DEL; its restore script calls and the re-read after it still count: ~2 per partition,
# once). A batch's read is counted by its first command (MGET), its write by EVALSHA/EVAL.
NOT_BATCH_PATH = frozenset({"HELLO", "CLIENT", "SELECT", "AUTH", "PING", "ZRANGEBYSCORE",
                            "ZCARD", "SCAN", "DEL"})
REBALANCE = r"assigned partitions|revok|rebalanc|joined group|generation"
SCALE_FIELDS = ("throughput_eps", "events_in", "events_decided", "lost", "dead_letters",
                "duplicate_decision_ids", "events_per_worker", "process_cpu_seconds",
                "events_per_cpu_second", "machine_busy_cores", "rebalance_log")


@dataclass
class Options:
    events: int = 300_000
    customers: int = 100_000
    rate: float = 5000.0
    duration: float = 20.0
    only: tuple[str, ...] = ("a", "b", "c")
    modes: tuple[str, ...] = ("max", "steady")
    invalid_ratio: float = 0.005
    partitions: int = 6
    brokers: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/13"
    round_trip_events: int = 20_000
    timeout: float = 600.0
    keep_topics: bool = False
    log_dir: Path = Path("/tmp/tact-loadtest")
    seed: int = 42
    c_processes: int = 1  # (c) as `tact run --processes N`
    run_id: str = field(default_factory=lambda: f"{int(time.time()):x}")


class Run:
    """Topics, processes and figures of one invocation."""

    def __init__(self, o: Options) -> None:
        self.o = o
        self.topics: list[str] = []
        self.probe = M.Probe(o.brokers)

    def name(self, *parts: str) -> str:
        return ".".join(("lt", self.o.run_id, *parts))

    async def topic(self, name: str, partitions: int, *, log_append: bool = False) -> str:
        await M.create_topics(self.o.brokers, {name: partitions}, log_append_time=log_append)
        self.topics.append(name)
        return name

    async def preproduce(self, label: str, count: int, prefix: str, *, seed: int | None = None,
                         invalid_ratio: float | None = None,
                         progress: Callable[[int], None] | None = None
                         ) -> tuple[str, list[dict[str, Any]], Produced]:
        """A fresh topic of ``count`` generated events (ids starting with ``prefix``), produced
        as fast as possible; (topic, the events as read back, what the producer reported)."""
        o = self.o
        topic = await self.topic(self.name(label, "events"), o.partitions)
        ratio_ = o.invalid_ratio if invalid_ratio is None else invalid_ratio
        evs = generate_events(count, o.customers, o.seed if seed is None else seed, time.time(),
                              invalid_ratio=ratio_, id_prefix=prefix)
        sent = await produce(evs, topic, o.brokers, max_seconds=o.timeout, progress=progress)
        return topic, await M.read_events(o.brokers, topic, prefix), sent

    def flush_redis(self) -> None:
        client = Redis.from_url(self.o.redis_url)
        try:
            if int(client.connection_pool.connection_kwargs.get("db", 0)) == 0:
                raise SystemExit("refusing to flush Redis db 0: pass a dedicated --redis-url")
            client.flushdb()
        finally:
            client.close()

    def target(self, system: str, mode: str, events_topic: str, *, group: str = "",
               worker: str = "", redis_url: str = "") -> Target:
        return Target(system, events_topic, self.name(system, mode, "out"),
                      self.name(system, mode, "dlq"),
                      group or f"lt-{self.o.run_id}-{system}-{mode}", self.o.brokers,
                      redis_url or self.o.redis_url, worker_id=worker, web_port=free_port(),
                      max_seconds=self.o.timeout + 120)

    async def warm_up(self, proc: Proc, t: Target, prefix: str) -> bool:
        """Trickle events until the system answers (group joined, first batch out)."""
        outs = [t.output_topic, t.dead_letter_topic]
        deadline = time.monotonic() + 120
        k = 0
        while time.monotonic() < deadline and proc.alive():
            evs = generate_events(20, self.o.customers, self.o.seed + k, time.time(),
                                  id_prefix=f"{prefix}{k:04d}-")
            await produce(evs, t.events_topic, self.o.brokers, live_time=True)
            k += 1
            for _ in range(10):
                await asyncio.sleep(0.1)
                if await self.probe.total(outs) > 0:
                    return True
        return False

    async def run_system(self, t: Target, events: dict[str, int], mode: str, *,
                         live: int = 0, prefix: str = "", workers: int = 1,
                         join_at: int = 0) -> dict[str, Any]:
        """Start ``t`` (``workers`` processes in its group; the others once ``join_at``
        events are committed), produce live if asked, wait for the drain, stop, join."""
        o = self.o
        self.flush_redis()
        await self.topic(t.output_topic, o.partitions, log_append=True)
        await self.topic(t.dead_letter_topic, 1, log_append=True)
        rclient = R.connect(o.redis_url)
        before = R.snapshot(rclient)
        base = t.worker_id.removesuffix("-w1") or t.group
        targets = [t] + [replace(t, worker_id=f"{base}-w{k}", web_port=free_port())
                         for k in range(2, workers + 1)]
        procs = [Proc(x, o.log_dir / f"{o.run_id}-{x.system}-{mode}-{k}.log")
                 for k, x in enumerate(targets, 1)]
        tailer = Tailer(o.brokers, t.output_topic,
                        o.log_dir / f"{o.run_id}-{t.system}-{mode}-received.json")
        if live:  # tailing before the system starts, so it misses nothing
            await tailer.start()
        procs[0].start()
        if not join_at:
            for p in procs[1:]:
                p.start()
        status, stats, cpu, cpu0 = "", [], [], [0.0 for _ in procs]
        received: dict[str, float] = {}
        try:
            if live:
                if not await self.warm_up(procs[0], t, f"{prefix}w"):
                    return {"error": "no output after warm-up", "log": procs[0].tail(),
                            "system": t.system, "mode": mode}
                await asyncio.sleep(1.0)
                before = R.snapshot(rclient)
                cpu0 = [p.cpu_seconds() or 0.0 for p in procs]
                evs = generate_events(live, o.customers, o.seed, time.time(),
                                      invalid_ratio=o.invalid_ratio, id_prefix=f"{prefix}m-")
                with progress() as bar:
                    task = bar.add_task(f"{t.system}: live {o.rate:,.0f}/s", total=live)
                    await produce(evs, t.events_topic, o.brokers, rate=o.rate, live_time=True,
                                  max_seconds=o.duration * 3 + 30,
                                  progress=lambda n: bar.update(task, completed=n))
            total = await self.probe.total([t.events_topic])
            busy0, all0 = machine_cpu()
            status = await M.drain(self.probe, procs, t, total, self.o.timeout,
                                   f"{t.system}: {NAMES[t.system]}", join_at)
            after = R.snapshot(rclient)
            busy1, all1 = machine_cpu()
            stats = [p.stats() for p in procs]
            cpu = [p.cpu_seconds() for p in procs]
        finally:
            codes = [p.stop() for p in procs]
            received = await tailer.stop()
            rclient.close()
        if live:
            events = await M.read_events(o.brokers, t.events_topic, f"{prefix}m-")
        out = await M.read_outputs(o.brokers, t.output_topic, t.dead_letter_topic, events)
        res = M.summarize(events, out)
        busy = (busy1 - busy0) / max(all1 - all0, 1e-9) * (os.cpu_count() or 1)
        res.update(status=status, exit_codes=codes, system=t.system, mode=mode,
                   logs=[str(p.log_path) for p in procs], process_cpu_seconds=cpu,
                   machine_busy_cores=round(busy, 2))
        # steady: the live window only (start-up and warm-up left out); max: the whole life
        work = sum(c - c0 for c, c0 in zip(cpu, cpu0, strict=True) if c)
        res["events_per_cpu_second"] = round(len(events) / work) if work > 0 else None
        res["cpu_window"] = "after warm-up" if live else "whole process life"
        if live:
            vis = visibility_latencies(events, received)
            res["visible_latency_ms"] = latency_stats(vis)
            res["events_visible"] = len(vis)
        if status != "drained":
            res["log"] = procs[0].tail()
        if workers > 1:
            res["rebalance_log"] = [f"{p.target.worker_id or p.target.group}: {line}"
                                    for p in procs for line in p.log_lines(REBALANCE)]
            res["events_per_worker"] = [sum((s or {}).get("events_in", {}).values())
                                        for s in stats]
        ok = [s for s in stats if s]
        batches = None
        if t.system == "c":
            batches = sum(s.get("batches", 0) for s in ok) or await self.marker_batches(t, out)
            res["batches"] = batches
            res["batches_from"] = "worker /stats" if ok else "transaction markers (estimate)"
        if t.system in ("b", "c"):
            res["redis"] = R.delta(before, after).as_dict(batches, len(events))
        if ok:
            res["worker_stats"] = [{k: s.get(k) for k in (
                "batches", "batch_size", "batch_seconds", "decide_seconds", "commit_seconds",
                "restores", "retries", "dead_letters")} for s in ok]
        return res

    async def marker_batches(self, t: Target, out: M.Outputs) -> int:
        """Transactions that touched the busiest decisions partition (a lower bound)."""
        ends = await self.probe.ends([t.output_topic])
        return max((end - out.records_by_partition.get(tp.partition, 0)
                    for tp, end in ends.items()), default=0)

    async def cleanup(self) -> None:
        if self.o.keep_topics or not self.topics:
            return
        extra = [n + ".ticks" for n in self.topics if n.endswith("events")]
        for names in (self.topics, extra):
            try:
                await M.delete_topics(self.o.brokers, names)
            except Exception as exc:  # a missing ticks topic, a slow broker: not fatal
                console.print(f"[yellow]topic cleanup: {exc!r}[/]")


async def max_mode(run: Run) -> dict[str, Any]:
    o = run.o
    with progress() as bar:
        task = bar.add_task("producing events", total=o.events)
        topic, events, sent = await run.preproduce(
            "max", o.events, f"{o.run_id}x-", progress=lambda n: bar.update(task, completed=n))
    console.print(f"max: {sent.events:,} events in {topic} ({sent.rate:,.0f}/s to produce)")
    results: dict[str, Any] = {}
    for s in o.only:
        results[s] = await run.run_system(run.target(s, "max", topic), events, "max")
        show(results[s])
    return results


async def steady_mode(run: Run) -> dict[str, Any]:
    o = run.o
    n = int(o.rate * o.duration)
    results: dict[str, Any] = {}
    for s in o.only:
        topic = await run.topic(run.name(s, "steady", "events"), o.partitions)
        results[s] = await run.run_system(run.target(s, "steady", topic), {}, "steady",
                                          live=n, prefix=f"{o.run_id}{s}")
        show(results[s])
    return results


async def round_trip_mode(run: Run) -> dict[str, Any]:
    """(c) through a counting relay in front of Redis: exact round trips per batch."""
    o = run.o
    topic, events, _ = await run.preproduce("rt", o.round_trip_events, f"{o.run_id}r-",
                                            seed=o.seed + 1, invalid_ratio=0.0)
    relay = R.RoundTripProxy(o.redis_url)
    await relay.start()
    try:
        res = await run.run_system(run.target("c", "rt", topic, redis_url=relay.url()), events,
                                   "rt")
    finally:
        await relay.stop()
    batches = res.get("batches") or 0
    by = dict(sorted(relay.by_command.items()))
    path = sum(n for c, n in by.items() if c not in NOT_BATCH_PATH)
    return {"round_trips": relay.round_trips, "commands": relay.commands,
            "round_trips_by_command": by, "connections": relay.connections,
            "batches": batches, "events": res.get("events_decided"), "status": res.get("status"),
            "round_trips_per_batch": round(relay.round_trips / batches, 2) if batches else None,
            "batch_path_round_trips_per_batch": round(path / batches, 2) if batches else None}


def summary(o: Options, results: dict[str, Any]) -> dict[str, Any]:
    return G.summary(o.run_id, results, {
        "events": o.events, "customers": o.customers, "rate": o.rate, "duration": o.duration,
        "invalid_ratio": o.invalid_ratio, "partitions": o.partitions,
        "c_processes": o.c_processes})


async def scale_out_mode(run: Run) -> dict[str, Any]:
    """(c) alone, then two `tact run` started together, then a second one joining mid-stream
    (a rebalance while events flow): the split, no duplicate decision ids, no loss."""
    o = run.o
    topic, events, _ = await run.preproduce("so", o.events, f"{o.run_id}s-")
    out: dict[str, Any] = {}
    for label, workers, join in (("one", 1, 0), ("two", 2, 0), ("join", 2, len(events) // 4)):
        t = run.target("c", f"so{label}", topic, worker=f"lt-{o.run_id}-{label}-w1")
        out[label] = await run.run_system(t, events, f"so-{label}", workers=workers,
                                          join_at=join)
        show(out[label])
    out["two_over_one"] = ratio(out["two"].get("throughput_eps"),
                                out["one"].get("throughput_eps"))
    return out


def parse(argv: list[str] | None) -> tuple[Options, bool, bool]:
    p = argparse.ArgumentParser(prog="python -m load_tests.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=None, help="max mode: events (300,000)")
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=5000.0, help="steady mode: events/s")
    p.add_argument("--duration", type=float, default=None, help="steady mode: seconds (20)")
    p.add_argument("--quick", action="store_true", help="small runs (40k events, 8 s)")
    p.add_argument("--only", default="a,b,c", help="systems, e.g. a,c")
    p.add_argument("--mode", default="max,steady", help="max, steady or both")
    p.add_argument("--scale-out", action="store_true", help="two tact run in one group")
    p.add_argument("--no-round-trips", action="store_true",
                   help="skip the (c) run through the round-trip counting Redis relay")
    p.add_argument("--invalid-ratio", type=float, default=0.005)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/13",
                   help="a dedicated database: it is FLUSHED before each system's run")
    p.add_argument("--timeout", type=float, default=600.0, help="per drain, seconds")
    p.add_argument("--keep-topics", action="store_true")
    p.add_argument("--log-dir", type=Path, default=Path("/tmp/tact-loadtest"))
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--c-processes", type=int, default=1,
                   help="(c) as `tact run --processes N` (N workers under one supervisor)")
    a = p.parse_args(argv)
    only = tuple(s for s in ("a", "b", "c") if s in a.only.split(","))
    modes = tuple(m for m in ("max", "steady") if m in a.mode.split(","))
    o = Options(events=a.events or (40_000 if a.quick else 300_000), customers=a.customers,
                rate=a.rate, duration=a.duration or (8.0 if a.quick else 20.0), only=only,
                modes=modes, invalid_ratio=a.invalid_ratio, partitions=a.partitions,
                brokers=a.brokers, redis_url=a.redis_url, timeout=a.timeout,
                keep_topics=a.keep_topics, log_dir=a.log_dir, seed=a.seed,
                round_trip_events=20_000 if a.quick else 60_000, c_processes=a.c_processes)
    return o, a.scale_out, not a.no_round_trips


async def amain(o: Options, scale_out: bool, round_trips: bool) -> dict[str, Any]:
    run = Run(o)
    await run.probe.start()
    results: dict[str, Any] = {}
    try:
        if scale_out:
            results["scale_out"] = await scale_out_mode(run)
            return results
        if "max" in o.modes:
            results["max"] = await max_mode(run)
        if "steady" in o.modes:
            results["steady"] = await steady_mode(run)
        if round_trips and "c" in o.only:
            results["round_trips"] = await round_trip_mode(run)
    finally:
        await run.probe.stop()
        await run.cleanup()
    return results


def main(argv: list[str] | None = None) -> int:
    o, scale_out, round_trips = parse(argv)
    console.print(f"run {o.run_id}: systems {','.join(o.only)}, logs in {o.log_dir}")
    results = asyncio.run(amain(o, scale_out, round_trips))
    o.log_dir.mkdir(parents=True, exist_ok=True)
    (o.log_dir / f"{o.run_id}.json").write_text(json.dumps(results, indent=1, default=str))
    if not scale_out:
        console.print(table(results))
    line = summary(o, results) if not scale_out else {"run_id": o.run_id, "scale_out": {
        k: {f: v.get(f) for f in SCALE_FIELDS} if isinstance(v, dict) else v
        for k, v in results["scale_out"].items()}}
    console.print(f"full results: {o.log_dir / (o.run_id + '.json')}")
    print(json.dumps(line, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
