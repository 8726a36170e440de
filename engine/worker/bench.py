"""Consumption benchmarks: a plain Faust agent against raw aiokafka and the worker's batch path.

Run against the local broker (``tact services up``)::

    python -m engine.worker.bench fill --topic bench.events --n 200000
    python -m engine.worker.bench raw --topic bench.events --n 200000
    python -m engine.worker.bench faust-agent --topic bench.events --n 200000
    python -m engine.worker.bench faust-take --topic bench.events --n 200000
    python -m engine.worker.bench faust-batch --topic bench.events --n 200000

Each consumer uses a fresh consumer group, reads from the earliest offset and reports the
rate from its first record to its ``n``-th (group join and start-up are not counted), as one
JSON line on stdout. ``docs/worker.md`` records the numbers measured on the project's machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

EVENT_TYPES = ("app_open", "product_viewed", "cart_updated", "newsletter_opened", "price_dropped")


def synthetic_event(i: int, customers: int, rng: random.Random, start: float) -> dict[str, Any]:
    """One valid wire event for customer ``c-<k>``; event time moves one second per event."""
    return {
        "id": f"ev-{i}",
        "customer": f"c-{rng.randrange(customers)}",
        "type": rng.choice(EVENT_TYPES),
        "at": datetime.fromtimestamp(start + i, UTC).isoformat(),
        "data": {"sku": f"sku-{rng.randrange(500)}", "price": rng.randrange(5, 500)},
    }


async def fill(bootstrap: str, topic: str, n: int, customers: int, partitions: int) -> float:
    """Create ``topic`` if needed and produce ``n`` synthetic events keyed by customer."""
    from aiokafka import AIOKafkaProducer

    from engine.services.manager import ensure_topics

    await asyncio.to_thread(ensure_topics, bootstrap, {topic: partitions})
    rng = random.Random(7)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=256 * 1024, acks="all")
    await producer.start()
    t0 = time.perf_counter()
    try:
        futures = []
        for i in range(n):
            ev = synthetic_event(i, customers, rng, start)
            futures.append(await producer.send(topic, orjson.dumps(ev),
                                               key=ev["customer"].encode()))
            if len(futures) >= 10_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n / (time.perf_counter() - t0)


@dataclass
class Rate:
    mode: str
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        return json.dumps({"mode": self.mode, "events": self.events,
                           "seconds": round(self.seconds, 3),
                           "events_per_s": round(self.per_second)})


def _getmany_consumer(bootstrap: str, topic: str, tag: str) -> Any:
    """A fresh group reading ``topic`` from the start, with large fetches."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(topic, bootstrap_servers=bootstrap,
                            group_id=f"bench-{tag}-{uuid.uuid4().hex[:8]}",
                            auto_offset_reset="earliest", enable_auto_commit=False,
                            max_partition_fetch_bytes=4 * 1024 * 1024,
                            fetch_max_bytes=64 * 1024 * 1024)


async def raw(bootstrap: str, topic: str, n: int, max_records: int = 5000) -> Rate:
    """aiokafka ``getmany`` in a loop: the ceiling for a Python consumer."""

    consumer = _getmany_consumer(bootstrap, topic, "raw")
    await consumer.start()
    try:
        got = 0
        t0 = 0.0
        while got < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            for records in batch.values():
                if records and not t0:
                    t0 = time.perf_counter()
                got += len(records)
        return Rate("raw-aiokafka-getmany", got, time.perf_counter() - t0)
    finally:
        await consumer.stop()


# Faust settings that bound its per-event pipeline: bigger polls, buffers and fetches,
# rarer commits. They help little: the cost is per event, in the stream machinery.
TUNED: dict[str, Any] = {
    "broker_max_poll_records": 5000,
    "stream_buffer_maxsize": 65536,
    "consumer_max_fetch_size": 4 * 1024 * 1024,
    "broker_commit_every": 50_000,
    "broker_commit_interval": 10.0,
    "stream_wait_empty": False,
}


def faust_agent(bootstrap: str, topic: str, n: int, take: int = 0, tuned: bool = False) -> None:
    """A plain Faust agent (``take`` = 0) or one using ``stream.take(take, within=0.05)``.

    Runs a Faust worker in this process until ``n`` events were seen, then prints the rate.
    """
    import faust

    app = faust.App(f"bench-faust-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}",
                    value_serializer="raw", key_serializer="raw", web_enabled=False,
                    topic_disable_leader=True, consumer_auto_offset_reset="earliest",
                    store="memory://", **(TUNED if tuned else {}))
    src = app.topic(topic, value_type=bytes, key_type=bytes)
    state = {"got": 0, "t0": 0.0}
    mode = (f"faust-take-{take}" if take else "faust-agent") + ("-tuned" if tuned else "")

    def _count(k: int) -> None:
        if not state["t0"]:
            state["t0"] = time.perf_counter()
        state["got"] += k
        if state["got"] >= n:
            rate = Rate(mode, int(state["got"]), time.perf_counter() - state["t0"])
            print(rate.line(), flush=True)
            os._exit(0)

    if take:
        @app.agent(src)
        async def batched(stream: Any) -> None:
            async for values in stream.take(take, within=0.05):
                _count(len(values))
    else:
        @app.agent(src)
        async def plain(stream: Any) -> None:
            async for _value in stream:
                _count(1)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


def faust_batch(bootstrap: str, topic: str, n: int) -> None:
    """The worker's own path: Faust lifecycle, our aiokafka batch consumer (consume only)."""
    import faust

    app = faust.App(f"bench-batch-{uuid.uuid4().hex[:8]}", web_enabled=False,
                    store="memory://")
    app.boot_strategy = app.BootStrategy(app, enable_kafka=False)

    @app.task  # type: ignore[untyped-decorator,unused-ignore]
    async def consume() -> None:
        consumer = _getmany_consumer(bootstrap, topic, "batch")
        await consumer.start()
        got, t0 = 0, 0.0
        while got < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                if records and not t0:
                    t0 = time.perf_counter()
                got += len(records)
        print(Rate("faust-app+aiokafka-batch", got, time.perf_counter() - t0).line(), flush=True)
        os._exit(0)

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


async def worker(bootstrap: str, topic: str, n: int, rules: str, max_events: int,
                 memory: bool = False) -> Rate:
    """The whole worker in-process: decode, Redis state, outbox, decide, one transaction per
    batch. Reads ``topic`` from the start with a fresh group and a fresh Redis prefix."""
    from engine.config import TactSettings
    from engine.worker.runtime import StreamWorker, WorkerOptions

    u = uuid.uuid4().hex[:8]
    settings = TactSettings(kafka_brokers=bootstrap, events_topic=topic,
                            decisions_topic=f"{topic}.decisions-{u}",
                            dead_letter_topic=f"{topic}.dead-letter-{u}",
                            consumer_group=f"bench-worker-{u}", rules_path=rules,
                            batch_max_events=max_events)
    w = StreamWorker(WorkerOptions(settings=settings, worker_id=f"bench-{u}",
                                   redis_prefix=f"tact-bench-{u}:", wall_clock_ticks=False,
                                   memory_state=memory))
    await w.start()
    try:
        t0 = 0.0
        while w.stats.batch_size.total < n:
            if not t0 and w.stats.batches:
                t0 = time.perf_counter() - w.stats.batch_seconds.total
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t0
        st = w.stats
        print(json.dumps({"batches": st.batches, "mean_batch": round(st.batch_size.mean),
                          "decide_s": round(st.decide_seconds.total, 2),
                          "commit_s": round(st.commit_seconds.total, 2),
                          "decisions": sum(st.decisions.values())}), file=sys.stderr)
        mode = f"worker-{'memory' if memory else 'redis'}-batch{max_events}"
        return Rate(mode, int(st.batch_size.total), elapsed)
    finally:
        await w.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m engine.worker.bench")
    p.add_argument("mode", choices=["fill", "raw", "faust-agent", "faust-take", "faust-batch",
                                    "worker"])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="bench.events")
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--take", type=int, default=1000)
    p.add_argument("--tuned", action="store_true", help="Faust modes: apply TUNED settings")
    p.add_argument("--rules", default="rules", help="worker mode: the rule pack")
    p.add_argument("--batch", type=int, default=2000, help="worker mode: batch_max_events")
    p.add_argument("--memory", action="store_true", help="worker mode: memory state, no Redis")
    a = p.parse_args(argv)
    if a.mode == "fill":
        rate = asyncio.run(fill(a.bootstrap, a.topic, a.n, a.customers, a.partitions))
        print(json.dumps({"mode": "fill", "events": a.n, "events_per_s": round(rate)}))
    elif a.mode == "raw":
        print(asyncio.run(raw(a.bootstrap, a.topic, a.n)).line())
    elif a.mode == "faust-agent":
        faust_agent(a.bootstrap, a.topic, a.n, tuned=a.tuned)
    elif a.mode == "worker":
        print(asyncio.run(worker(a.bootstrap, a.topic, a.n, a.rules, a.batch, a.memory)).line())
    elif a.mode == "faust-take":
        faust_agent(a.bootstrap, a.topic, a.n, take=a.take, tuned=a.tuned)
    else:
        faust_batch(a.bootstrap, a.topic, a.n)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
