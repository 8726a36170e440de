"""The demo's traffic on Kafka: customer events at a steady rate, and the answers to the
worker's decisions (delivery reports, opens, clicks, bounces, conversions) fed back through
the events topic, as a sender and a shop would.

``python -m load_tests.demo_feed --rate 200 --customers 5000 --status feed.json``

The model is ``load_tests.demo_model``. Decisions are read from the decisions topic
(``read_committed``: the worker writes in transactions), from its end at start. Every
event is stamped with the wall clock when it is sent. ``--status`` names a JSON file
rewritten about once a second with what was sent so far (``tact demo`` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from engine.config import TactSettings
from load_tests.demo_model import DemoTraffic, Responder, Scheduled
from load_tests.generator import kafka_key


@dataclass
class FeedStatus:
    """What the feed sent so far, by event type (all, and the answers to decisions among
    them), and how many decisions it read."""

    sent: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    decisions: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps({"events": sum(self.sent.values()), "by_type": dict(self.sent),
                             "answers": dict(self.answers), "decisions_read": self.decisions})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _Feed:
    def __init__(self, settings: TactSettings, rate: float, customers: int, seed: int,
                 status: Path | None) -> None:
        self.settings = settings
        self.rate = rate
        self.traffic = DemoTraffic(customers, seed, id_prefix=f"demo{int(time.time()):x}-")
        self.responder = Responder(seed + 1)
        self.status = FeedStatus()
        self.status_path = status
        self.due: list[tuple[float, int, dict[str, Any]]] = []  # (monotonic due, serial, event)
        self.serial = 0
        self.stop = asyncio.Event()

    def schedule(self, answers: list[Scheduled]) -> None:
        now = time.monotonic()
        for a in answers:
            self.serial += 1
            heapq.heappush(self.due, (now + a.delay, self.serial, a.event))

    async def read_decisions(self, consumer: Any) -> None:
        while not self.stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for r in records:
                    try:
                        decision = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        continue  # not a decision: nothing to answer
                    if isinstance(decision, dict):
                        self.status.decisions += 1
                        self.schedule(self.responder.respond(decision))

    async def send(self, producer: Any, event: dict[str, Any], *, answer: bool = False
                   ) -> None:
        event["at"] = _now_iso()
        await producer.send(self.settings.events_topic, orjson.dumps(event),
                            key=kafka_key(event))
        self.status.sent[event["type"]] += 1
        if answer:
            self.status.answers[event["type"]] += 1

    def write_status(self) -> None:
        if self.status_path is None:
            return
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_bytes(self.status.to_json())
        os.replace(tmp, self.status_path)  # readers never see half a file

    async def produce(self, producer: Any, duration: float) -> None:
        t0 = last_status = time.monotonic()
        traffic_sent = 0
        while not self.stop.is_set():
            now = time.monotonic()
            if duration and now - t0 >= duration:
                break
            while self.due and self.due[0][0] <= now:
                await self.send(producer, heapq.heappop(self.due)[2], answer=True)
            for _ in range(int((now - t0) * self.rate) + 1 - traffic_sent):
                await self.send(producer, self.traffic.next_event(""))
                traffic_sent += 1
            if now - last_status >= 1.0:
                self.write_status()
                last_status = now
            await asyncio.sleep(0.005)
        await producer.flush()
        self.write_status()


async def run(settings: TactSettings, *, rate: float, customers: int, seed: int,
              duration: float, status: Path | None) -> FeedStatus:
    """Feed until ``duration`` seconds have passed (0: until SIGTERM/SIGINT)."""
    from connectors.kafka import clients
    from connectors.kafka.admin import TopicSpec, ensure_topics

    ensure_topics(settings, {settings.events_topic: TopicSpec(settings.events_partitions),
                             settings.decisions_topic: TopicSpec(settings.decisions_partitions)})
    feed = _Feed(settings, rate, customers, seed, status)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, feed.stop.set)
    producer = clients.aio_producer(settings, acks=1, linger_ms=5,
                                    client_id="tact-demo-feed")
    consumer = clients.aio_consumer(settings, settings.decisions_topic,
                                    auto_offset_reset="latest", enable_auto_commit=False,
                                    isolation_level="read_committed",
                                    client_id="tact-demo-feed")
    await producer.start()
    await consumer.start()
    reader = asyncio.create_task(feed.read_decisions(consumer))
    try:
        await feed.produce(producer, duration)
    finally:
        feed.stop.set()
        await reader
        await consumer.stop()
        await producer.stop()
    return feed.status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.demo_feed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=200.0, help="customer events per second")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--duration", type=float, default=0.0, help="seconds (0: until stopped)")
    p.add_argument("--status", type=Path, default=None, help="JSON status file")
    a = p.parse_args(argv)
    if a.rate <= 0:
        p.error("--rate must be positive")
    status = asyncio.run(run(TactSettings(), rate=a.rate, customers=a.customers, seed=a.seed,
                             duration=a.duration, status=a.status))
    print(f"sent {sum(status.sent.values())} events; read {status.decisions} decisions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
