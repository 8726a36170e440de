"""Helpers for worker integration tests: unique names, produce, committed-offset barriers,
and reading everything a transactional producer committed (read_committed, up to the LSO).

Every test gets its own topics, consumer group and Redis key prefix (:class:`WorkerNames`),
so tests never see each other's records or state.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from engine.config import TactSettings
from engine.models.state import CustomerState
from engine.services.manager import ensure_topics
from engine.worker.changelog import state_record

REPO = Path(__file__).resolve().parents[2]
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class WorkerNames:
    """Topics, group, Redis prefix and worker id of one test."""

    tag: str
    bootstrap: str
    redis_url: str

    @classmethod
    def new(cls, what: str, bootstrap: str, redis_url: str) -> WorkerNames:
        return cls(f"tact-it-worker-{what}-{uuid.uuid4().hex[:8]}", bootstrap, redis_url)

    @property
    def events(self) -> str:
        return f"{self.tag}.events"

    @property
    def ticks(self) -> str:
        return f"{self.tag}.events.ticks"

    @property
    def decisions(self) -> str:
        return f"{self.tag}.decisions"

    @property
    def dead_letter(self) -> str:
        return f"{self.tag}.dead-letter"

    @property
    def state(self) -> str:
        return f"{self.tag}.state"

    @property
    def group(self) -> str:
        return f"{self.tag}-group"

    @property
    def prefix(self) -> str:
        return f"{self.tag}:"

    @property
    def worker_id(self) -> str:
        return f"{self.tag}-w"

    def settings(self, **overrides: Any) -> TactSettings:
        base: dict[str, Any] = {
            "kafka_brokers": self.bootstrap,
            "redis_url": self.redis_url,
            "events_topic": self.events,
            "decisions_topic": self.decisions,
            "dead_letter_topic": self.dead_letter,
            "state_topic": self.state,
            "events_partitions": 3,
            "decisions_partitions": 3,
            "consumer_group": self.group,
            "rules_path": REPO / "rules",
        }
        base.update(overrides)
        return TactSettings(**base)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a `python -m engine.worker` subprocess of this test."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TACT_")}
        env.update({
            "PYTHONPATH": str(REPO),
            "TACT_KAFKA_BROKERS": self.bootstrap,
            "TACT_REDIS_URL": self.redis_url,
            "TACT_EVENTS_TOPIC": self.events,
            "TACT_DECISIONS_TOPIC": self.decisions,
            "TACT_DEAD_LETTER_TOPIC": self.dead_letter,
            "TACT_STATE_TOPIC": self.state,
            "TACT_EVENTS_PARTITIONS": "3",
            "TACT_DECISIONS_PARTITIONS": "3",
            "TACT_CONSUMER_GROUP": self.group,
            "TACT_REDIS_PREFIX": self.prefix,
            "TACT_WORKER_ID": self.worker_id,
        })
        env.update(extra)
        return env


def partition_of(key: str, partitions: int) -> int:
    """The partition a keyed record lands on (Kafka's default partitioner)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


async def partitions(bootstrap: str, topic: str, timeout: float = 20.0) -> int:
    """How many partitions ``topic`` has (waits for it to exist)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return len(await asyncio.wait_for(producer.partitions_for(topic), timeout))
    finally:
        await producer.stop()


def event_bytes(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(event))


async def produce(bootstrap: str, topic: str,
                  records: Iterable[tuple[bytes | None, bytes, Headers | None]]) -> list[Any]:
    """Produce (key, value, headers) in order and wait for every ack; returns the metadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, headers=headers or [])
                   for key, value, headers in records]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def seed_states(names: WorkerNames, states: Iterable[CustomerState],
                      partitions: int = 3) -> None:
    """Customers' starting states, as the worker finds them: in the state changelog (the
    store is rebuilt from it when the worker first owns a partition)."""
    await asyncio.to_thread(ensure_topics, names.bootstrap, {names.events: partitions,
                                                             names.state: partitions})
    producer = AIOKafkaProducer(bootstrap_servers=names.bootstrap, acks="all")
    await producer.start()
    try:
        for st in states:
            key, value = state_record(st)
            await producer.send_and_wait(names.state, value, key=key,
                                         partition=partition_of(st.customer, partitions))
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: om.offset for tp, om in offsets.items()}
    finally:
        await admin.close()


async def wait_committed(bootstrap: str, group: str, targets: Mapping[TopicPartition, int],
                         timeout: float = 30.0) -> None:
    """Wait until the group committed at least ``targets`` (next offsets) on each partition."""
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            offsets = await admin.list_consumer_group_offsets(group)
            got = {tp: om.offset for tp, om in offsets.items()}
            if all(got.get(tp, -1) >= off for tp, off in targets.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} committed {got}, waiting for {dict(targets)}")
            await asyncio.sleep(0.03)
    finally:
        await admin.close()


def after(metadata: Sequence[Any]) -> dict[TopicPartition, int]:
    """The next offsets after these produced records, per partition."""
    out: dict[TopicPartition, int] = {}
    for m in metadata:
        tp = TopicPartition(m.topic, m.partition)
        out[tp] = max(out.get(tp, 0), m.offset + 1)
    return out


class CommittedReader:
    """Reads a topic with read_committed from the beginning, in steps: :meth:`read_new`
    returns what was committed since the last call, once no transaction is open."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._c: Any = None
        self._probe: Any = None
        self._tps: list[TopicPartition] = []

    async def __aenter__(self) -> CommittedReader:
        self._c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                   isolation_level="read_committed", enable_auto_commit=False)
        self._probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap,
                                       isolation_level="read_uncommitted",
                                       enable_auto_commit=False)
        await self._c.start()
        await self._probe.start()
        n = await partitions(self.bootstrap, self.topic)
        self._tps = [TopicPartition(self.topic, p) for p in range(n)]
        self._c.assign(self._tps)
        await self._c.seek_to_beginning(*self._tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._c.stop()
        await self._probe.stop()

    async def read_new(self, timeout: float = 30.0) -> list[Any]:
        """Wait until no transaction is open on the topic (LSO == high watermark), then read
        every committed record up to there."""
        deadline = time.monotonic() + timeout
        while True:
            lso = await self._c.end_offsets(self._tps)  # read_committed: the LSO
            hw = await self._probe.end_offsets(self._tps)
            if lso == hw:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"a transaction stays open on {self.topic}: {lso} vs {hw}")
            await asyncio.sleep(0.05)
        out: list[Any] = []
        while True:
            pos = {tp: await self._c.position(tp) for tp in self._tps}
            if all(pos[tp] >= lso[tp] for tp in self._tps):
                return out
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {self.topic}: at {pos}, LSO {lso}")
            batch = await self._c.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)


async def read_committed(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    async with CommittedReader(bootstrap, topic) as reader:
        return await reader.read_new(timeout)


async def delete_prefix(redis_url: str, prefix: str) -> int:
    """Delete every Redis key under ``prefix`` (test clean-up)."""
    client = aioredis.Redis.from_url(redis_url)
    n = 0
    try:
        async for key in client.scan_iter(match=prefix + "*", count=1000):
            n += await client.delete(key)
    finally:
        await client.aclose()
    return n


async def http(method: str, url: str, token: str | None = None,
               timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """A tiny HTTP client for the worker's web endpoints (aiohttp ships with Faust)."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s, \
            s.request(method, url, headers=headers) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body if isinstance(body, dict) else {"body": body}
