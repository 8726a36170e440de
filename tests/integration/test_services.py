"""The local services answer, and both Kafka clients we use can really work against the broker."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from engine.services import manager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _topic(prefix: str) -> str:
    return f"tact-it-{prefix}-{uuid.uuid4().hex[:10]}"


def test_redis_answers_ping(services: manager.Connection) -> None:
    client = redis.Redis.from_url(services.redis_url)
    try:
        assert client.ping() is True
        key = f"tact-it:{uuid.uuid4().hex}"
        client.set(key, "1", ex=30)
        assert client.get(key) == b"1"
    finally:
        client.close()


def test_kafka_answers_metadata(services: manager.Connection) -> None:
    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap_servers)
    try:
        cluster = admin.describe_cluster()
        assert [b["broker_id"] for b in cluster["brokers"]] == [1]
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


def test_ensure_topics_is_idempotent(services: manager.Connection) -> None:
    name = _topic("ensure")
    assert manager.ensure_topics(services.bootstrap_servers, {name: 3}) == [name]
    assert manager.ensure_topics(services.bootstrap_servers, {name: 3}) == []
    admin = KafkaAdminClient(bootstrap_servers=services.bootstrap_servers)
    try:
        (described,) = admin.describe_topics([name])
        assert len(described["partitions"]) == 3
    finally:
        admin.close()


def test_kafka_python_produce_consume_commit(services: manager.Connection) -> None:
    topic = _topic("kp")
    manager.ensure_topics(services.bootstrap_servers, {topic: 1})
    producer = KafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
    try:
        producer.send(topic, key=b"k", value=b"hello-kafka-python").get(timeout=30)
        producer.flush()
    finally:
        producer.close()

    group = f"{topic}-group"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(r.value for r in records)
        assert values == [b"hello-kafka-python"]
        consumer.commit()
        assert consumer.committed(TopicPartition(topic, 0)) == 1
    finally:
        consumer.close()


async def test_aiokafka_produce_consume_commit(services: manager.Connection) -> None:
    topic = _topic("aio")
    manager.ensure_topics(services.bootstrap_servers, {topic: 1})
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, key=b"k", value=b"hello-aiokafka")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=services.bootstrap_servers,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=30_000, max_records=1)
        deadline = time.monotonic() + 60
        while not batches and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=1)
        values = [r.value for records in batches.values() for r in records]
        assert values == [b"hello-aiokafka"]
        await consumer.commit()
        assert await consumer.committed(AioTopicPartition(topic, 0)) == 1
    finally:
        await consumer.stop()


def test_up_is_idempotent(services: manager.Connection) -> None:
    before = manager.status()
    assert before.ok
    assert before.kafka.pid is not None and before.redis.pid is not None

    started = time.monotonic()
    result = manager.up()
    elapsed = time.monotonic() - started

    assert result.already_running
    assert elapsed < 10, f"idempotent up took {elapsed:.1f}s"
    assert (result.status.kafka.pid, result.status.redis.pid) == (
        before.kafka.pid,
        before.redis.pid,
    )
    assert result.status.connection == services
