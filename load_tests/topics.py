"""The load test's topics: created fresh (outputs with broker append times), deleted, and
polled (end offsets, a consumer group's lag) while a run drains."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

LOG_APPEND = {"message.timestamp.type": "LogAppendTime"}


async def create_topics(bootstrap: str, topics: Mapping[str, int], *,
                        log_append_time: bool = False, retention_ms: int = 6 * 3_600_000) -> None:
    """Create fresh topics ``{name: partitions}`` (an existing one is an error: runs must
    not mix). Measured output topics get broker-stamped append times."""
    configs = {"retention.ms": str(retention_ms)}
    if log_append_time:
        configs.update(LOG_APPEND)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="tact-loadtest-admin")
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, p, 1, topic_configs=dict(configs))
                                   for n, p in topics.items()], timeout_ms=30_000)
        parts = [TopicPartition(n, p) for n, k in topics.items() for p in range(k)]
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            for _ in range(100):  # until every partition's leader answers (bounded: ~10 s)
                try:
                    await consumer.end_offsets(parts)
                    break
                except KafkaError:
                    await asyncio.sleep(0.1)
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def partitions_of(admin: AIOKafkaAdminClient, topic: str) -> list[TopicPartition]:
    meta = await admin.describe_topics([topic])
    return [TopicPartition(topic, p["partition"])
            for t in meta if t.get("error_code") == 0
            for p in sorted(t["partitions"], key=lambda p: p["partition"])]


async def delete_topics(bootstrap: str, topics: Iterable[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="tact-loadtest-admin")
    await admin.start()
    try:
        await admin.delete_topics(list(topics), timeout_ms=30_000)
    finally:
        await admin.close()


class Probe:
    """Long-lived admin client and consumer for polling end offsets and a group's lag."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                         client_id="tact-loadtest-probe")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                         client_id="tact-loadtest-probe")
        self._parts: dict[str, list[TopicPartition]] = {}

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        parts = self._parts.get(topic)
        if not parts:
            parts = await partitions_of(self.admin, topic)
            if parts:
                self._parts[topic] = parts
        return parts

    async def ends(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        parts = [tp for t in topics for tp in await self.partitions(t)]
        return dict(await self.consumer.end_offsets(parts)) if parts else {}

    async def total(self, topics: Iterable[str]) -> int:
        return sum((await self.ends(topics)).values())

    async def lag(self, group: str, topic: str) -> int | None:
        """Records of ``topic`` not yet committed by ``group`` (None: nothing committed)."""
        committed = await self.admin.list_consumer_group_offsets(group)
        if not any(tp.topic == topic for tp in committed):
            return None
        lag = 0
        for tp, end in (await self.ends([topic])).items():
            meta = committed.get(tp)
            lag += end - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return lag
