"""Tact on a secured Kafka: topic creation, the worker and the publisher through a SASL/PLAIN
listener, with TACT_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT settings.

A private stack (own dir, free ports; never the shared 9092/6379 services) with the broker's
SASL listener, shared by the module (a few seconds to start). Only the SASL address is given
to the code under test, so a client without the credentials cannot get anywhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from pydantic import SecretStr

from connectors.kafka import Publisher, clients
from connectors.kafka.admin import KafkaTopicsError, MissingTopicsError, TopicSpec, ensure_topics
from engine.config import TactSettings
from engine.services import manager
from engine.worker.runtime import StreamWorker, WorkerOptions
from tests.integration.fault_stack import PrivateStack
from tests.integration.kafka_utils import WorkerNames, delete_prefix
from tests.integration.worker_proc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

USER = "tact-it"
PASSWORD = "it-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[manager.ServicesSettings]:
    private = PrivateStack(tmp_path_factory.mktemp("sasl-services"),
                           kafka_sasl_port=free_port(), kafka_sasl_username=USER,
                           kafka_sasl_password=PASSWORD)
    with private.running() as settings:
        yield settings


def _sasl(stack: manager.ServicesSettings, password: str = PASSWORD, **over: Any) -> TactSettings:
    conn = stack.connection()
    assert conn.kafka_sasl_bootstrap is not None
    base: dict[str, Any] = {
        "kafka_brokers": conn.kafka_sasl_bootstrap,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": SecretStr(password),
    }
    return TactSettings(**(base | over))


def _failed_authentications(stack: manager.ServicesSettings) -> int:
    log = Path(stack.services_dir) / "kafka" / "logs" / "server.log"
    return log.read_text(encoding="utf-8", errors="replace").count("Failed authentication")


def _topic(what: str) -> str:
    return f"tact-it-sasl-{what}-{uuid.uuid4().hex[:8]}"


def test_ensure_topics_through_sasl_creates_them_with_their_configs(
    stack: manager.ServicesSettings,
) -> None:
    settings = _sasl(stack)
    events, state = _topic("events"), _topic("state")
    specs = {events: TopicSpec(3),
             state: TopicSpec(2, config={"cleanup.policy": "compact"})}

    assert ensure_topics(settings, specs) == sorted([events, state])
    assert ensure_topics(settings, specs) == []  # idempotent

    admin = clients.admin(settings)
    try:
        topics = admin.describe_topics([events, state])
        described = {t["name"]: len(t["partitions"]) for t in topics}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, state),
                                          ConfigResource(ConfigResourceType.TOPIC, events)])
    finally:
        admin.close()
    assert described == {events: 3, state: 2}
    assert configs["topic"][state]["cleanup.policy"]["value"] == "compact"
    assert "cleanup.policy" not in configs["topic"][events]  # the broker's default: delete

    missing = _topic("missing")
    with pytest.raises(MissingTopicsError) as caught:
        ensure_topics(settings, {events: TopicSpec(3), missing: TopicSpec(1)}, create=False)
    assert caught.value.topics == [missing]
    assert ensure_topics(settings, {events: TopicSpec(3)}, create=False) == []


def test_ensure_topics_with_a_wrong_password_is_a_clear_error(
    stack: manager.ServicesSettings,
) -> None:
    failures = _failed_authentications(stack)
    before = {t.ident for t in threading.enumerate()}
    wrong = PASSWORD + "-wrong"

    with pytest.raises(KafkaTopicsError) as caught:
        ensure_topics(_sasl(stack, wrong), {_topic("never"): TopicSpec(1)}, timeout=3.0)

    message = str(caught.value)
    assert f"PLAIN as '{USER}'" in message and "SASL_PLAINTEXT" in message
    assert "credentials" in message or "TACT_KAFKA_SASL" in message
    assert wrong not in message and PASSWORD not in message
    assert _failed_authentications(stack) > failures  # refused by the broker, not unreachable
    assert [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()] == []


async def _decisions(settings: TactSettings, topic: str, event_id: str,
                     timeout: float = 45.0) -> list[dict[str, Any]]:
    """The committed decisions of ``event_id`` on ``topic``, read through SASL."""
    consumer = clients.aio_consumer(settings, topic, group_id=f"{topic}-reader",
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    isolation_level="read_committed")
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            found = [body for records in batches.values() for r in records
                     if (body := orjson.loads(r.value))["event_id"] == event_id]
            if found:
                return found
        return []
    finally:
        await consumer.stop()


async def test_the_worker_and_the_publisher_run_through_sasl(
    stack: manager.ServicesSettings,
) -> None:
    conn = stack.connection()
    assert conn.kafka_sasl_bootstrap is not None
    names = WorkerNames.new("sasl", conn.kafka_sasl_bootstrap, conn.redis_url)
    settings = names.settings(kafka_security_protocol="SASL_PLAINTEXT",
                              kafka_sasl_mechanism="PLAIN", kafka_sasl_username=USER,
                              kafka_sasl_password=SecretStr(PASSWORD))
    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False))
    event = {"id": f"ev-{uuid.uuid4().hex[:8]}", "customer": "c-sasl", "type": "order_shipped",
             "at": "2026-03-02T10:00:00+00:00", "data": {"order": "O-1", "carrier": "UPS"}}
    await asyncio.wait_for(worker.start(), 45)  # creates its topics through SASL
    try:
        with Publisher(settings) as publisher:
            await asyncio.to_thread(publisher.publish, event, wait=True)
        decisions = await _decisions(settings, names.decisions, str(event["id"]))
    finally:
        await worker.stop()
        await delete_prefix(names.redis_url, names.prefix)

    # one decision per channel of the moment (no consent yet: suppressed, still decided)
    assert decisions and {d["rule"] for d in decisions} == {"shipping_update"}
    assert {d["customer"] for d in decisions} == {"c-sasl"}
