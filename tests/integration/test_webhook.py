"""Webhook delivery end to end: real Kafka, a real HTTP receiver on loopback, real signatures."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped,unused-ignore]
from kafka import KafkaAdminClient
from pydantic import SecretStr

from connectors.kafka import clients
from connectors.webhook import (
    SIGNATURE_HEADER,
    DeliveryConfig,
    SignatureError,
    SignatureVerifier,
    WebhookDeliverer,
    verify_signature,
)
from engine.models.decision import Decision, Outcome, decision_id
from engine.services import manager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SECRET = "whsec-integration"


@dataclass
class Hit:
    """One request the receiver got."""

    at: float
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def decision(self) -> Decision:
        return Decision.model_validate_json(self.body)


@dataclass
class Receiver:
    """Answers each decision id with its scripted statuses in turn (the last one repeats)."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)

    def for_id(self, did: str) -> list[Hit]:
        return [h for h in self.hits if h.headers.get("Idempotency-Key") == did]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        did = request.headers.get("Idempotency-Key", "")
        statuses = self.script.get(did, [200])
        status = statuses[min(len(self.for_id(did)), len(statuses) - 1)]
        self.hits.append(Hit(time.time(), dict(request.headers), body, status))
        return web.Response(status=status, text="ok" if status < 300 else "receiver says no")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}/hook"
    try:
        yield recv
    finally:
        await runner.cleanup()


@dataclass
class Topics:
    bootstrap: str
    decisions: str
    dead_letter: str
    group: str


@pytest.fixture
def topics(services: manager.Connection) -> Topics:
    tag = uuid.uuid4().hex[:10]
    t = Topics(
        services.bootstrap_servers,
        f"tact-it-decisions-{tag}",
        f"tact-it-webhook-dlq-{tag}",
        f"tact-it-webhook-{tag}",
    )
    manager.ensure_topics(t.bootstrap, {t.decisions: 3, t.dead_letter: 1})
    return t


def _decision(n: int, *, outcome: Outcome = "sent", after_s: float | None = None) -> Decision:
    now = datetime.now(UTC)
    event_id = f"ev-{uuid.uuid4().hex[:8]}-{n}"
    return Decision(
        id=decision_id(event_id, "welcome", "push"),
        event_id=event_id,
        customer=f"cust-{n}",
        rule="welcome",
        message="welcome_back",
        template="Welcome back, {name}!",
        category="engagement",
        channel="push",
        params={"name": f"N{n}"},
        outcome=outcome,
        reasons=[] if outcome == "sent" else ["quiet_hours"],
        deliver_after=None if after_s is None else now + timedelta(seconds=after_s),
        decided_at=now,
    )


async def _produce(bootstrap: str, topic: str, decisions: list[Decision]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for d in decisions:
            await producer.send_and_wait(topic, d.to_json(), key=d.customer.encode())
    finally:
        await producer.stop()


async def _read_topic(bootstrap: str, topic: str, expected: int, wait_s: float) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list[Any] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and len(records) < max(expected, 1):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _config(topics: Topics, receiver: Receiver, **changes: Any) -> DeliveryConfig:
    options: dict[str, Any] = {
        "url": receiver.url,
        "secret": SecretStr(SECRET),
        "kafka": clients.plaintext(topics.bootstrap),
        "topic": topics.decisions,
        "dead_letter_topic": topics.dead_letter,
        "group_id": topics.group,
        "from_beginning": True,
        "max_attempts": 4,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "timeout_s": 5.0,
        "commit_interval_s": 0.2,
        "shutdown_grace_s": 2.0,
    }
    return DeliveryConfig(**(options | changes))


@asynccontextmanager
async def _running(config: DeliveryConfig) -> AsyncIterator[WebhookDeliverer]:
    deliverer = WebhookDeliverer(config)
    task = asyncio.create_task(deliverer.run())
    try:
        yield deliverer
    finally:
        deliverer.stop()
        await asyncio.wait_for(task, 30)  # re-raises what run() raised


async def _until(check: Callable[[], bool], wait_s: float = 30.0) -> None:
    deadline = time.monotonic() + wait_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


def _committed(bootstrap: str, group: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group)[group]
        return {tp.partition: meta.offset for tp, meta in offsets.items()}
    finally:
        admin.close()


async def test_sent_decisions_arrive_signed_and_deferred_ones_on_time(
    topics: Topics, receiver: Receiver
) -> None:
    now_ = _decision(1)
    suppressed = _decision(2, outcome="suppressed")
    deferred = _decision(3, after_s=2.5)
    also_now = _decision(4)
    await _produce(topics.bootstrap, topics.decisions, [now_, suppressed, deferred, also_now])
    async with _running(_config(topics, receiver)) as deliverer:
        await _until(lambda: {h.decision.id for h in receiver.hits} >= {now_.id, also_now.id})
        assert not receiver.for_id(deferred.id)  # still held back
        await _until(lambda: len(receiver.hits) == 3)
        await asyncio.sleep(0.5)  # nothing else turns up
        await _until(lambda: sum(_committed(topics.bootstrap, topics.group).values()) == 4)
    assert len(receiver.hits) == 3
    assert not receiver.for_id(suppressed.id)
    for hit in receiver.hits:
        assert verify_signature(SECRET, hit.headers[SIGNATURE_HEADER], hit.body,
                                idempotency_key=hit.headers["Idempotency-Key"]) > 0
        assert hit.headers["Idempotency-Key"] == hit.decision.id
        assert hit.headers["Content-Type"] == "application/json"
        assert SECRET not in str(hit.headers)
    (late,) = receiver.for_id(deferred.id)
    assert deferred.deliver_after is not None
    assert late.at >= deferred.deliver_after.timestamp()  # not a moment early
    assert late.decision == deferred
    assert deliverer.stats.delivered == 3
    assert deliverer.stats.skipped == 1


async def test_500_three_times_then_200_is_delivered_once(
    topics: Topics, receiver: Receiver
) -> None:
    flaky = _decision(1)
    receiver.script[flaky.id] = [500, 500, 500, 200]
    await _produce(topics.bootstrap, topics.decisions, [flaky])
    async with _running(_config(topics, receiver, max_attempts=5)) as deliverer:
        await _until(lambda: deliverer.stats.delivered == 1)
    hits = receiver.for_id(flaky.id)
    assert [h.status for h in hits] == [500, 500, 500, 200]
    assert [h.headers["X-Tact-Attempt"] for h in hits] == ["1", "2", "3", "4"]
    # each attempt is signed afresh, validly, and none looks like a replay of another (the
    # retries here come faster than a second apart)
    verifier = SignatureVerifier(SECRET)
    for hit in hits:
        verifier.verify(hit.headers[SIGNATURE_HEADER], hit.body, hit.headers["Idempotency-Key"])
    with pytest.raises(SignatureError, match="replayed"):
        verifier.verify(hits[0].headers[SIGNATURE_HEADER], hits[0].body, flaky.id)
    assert deliverer.stats.retries == 3
    assert deliverer.stats.dead_lettered == 0
    assert await _read_topic(topics.bootstrap, topics.dead_letter, 0, 1.0) == []


async def test_always_failing_receiver_dead_letters_after_max_attempts(
    topics: Topics, receiver: Receiver
) -> None:
    down = _decision(1)
    rejected = _decision(2)
    receiver.script[down.id] = [503]
    receiver.script[rejected.id] = [400]  # a final 4xx: no retries
    await _produce(topics.bootstrap, topics.decisions, [down, rejected])
    async with _running(_config(topics, receiver, max_attempts=3)) as deliverer:
        await _until(lambda: deliverer.stats.dead_lettered == 2)
        await _until(lambda: sum(_committed(topics.bootstrap, topics.group).values()) == 2)
    assert [h.status for h in receiver.for_id(down.id)] == [503, 503, 503]
    assert [h.status for h in receiver.for_id(rejected.id)] == [400]
    records = await _read_topic(topics.bootstrap, topics.dead_letter, 2, 20.0)
    letters = {orjson.loads(r.value)["decision"]["id"]: (r, orjson.loads(r.value)) for r in records}
    assert set(letters) == {down.id, rejected.id}
    record, letter = letters[down.id]
    assert record.key == down.customer.encode()
    assert Decision.model_validate(letter["decision"]) == down
    assert letter["attempts"] == 3
    assert letter["status"] == 503
    assert letter["error"].startswith("HTTP 503")
    assert letter["topic"] == topics.decisions
    assert letter["endpoint"] == receiver.url
    assert "failed_at" in letter
    _, letter = letters[rejected.id]
    assert (letter["attempts"], letter["status"]) == (1, 400)


async def test_offsets_never_pass_an_undelivered_decision(
    topics: Topics, receiver: Receiver
) -> None:
    """Stopped while a decision waits for deliver_after: a restart still delivers it."""
    manager.ensure_topics(topics.bootstrap, {topics.decisions + "-1p": 1})
    topic = topics.decisions + "-1p"
    waiting = _decision(1, after_s=4.0)
    ready = _decision(2)
    await _produce(topics.bootstrap, topic, [waiting, ready])
    config = _config(topics, receiver, topic=topic)
    async with _running(config):
        await _until(lambda: bool(receiver.for_id(ready.id)))
        await asyncio.sleep(0.5)  # a few commit intervals
    assert _committed(topics.bootstrap, topics.group) == {0: 0}  # held by `waiting` at 0
    assert not receiver.for_id(waiting.id)

    async with _running(config) as second:
        await _until(lambda: bool(receiver.for_id(waiting.id)))
        await _until(lambda: _committed(topics.bootstrap, topics.group) == {0: 2})
    (hit,) = receiver.for_id(waiting.id)
    assert waiting.deliver_after is not None
    assert hit.at >= waiting.deliver_after.timestamp()
    # `ready` came again after the restart (at least once); receivers dedupe by Idempotency-Key.
    assert {h.headers["Idempotency-Key"] for h in receiver.for_id(ready.id)} == {ready.id}
    assert second.stats.delivered == 2


async def test_a_record_that_is_not_a_decision_is_dead_lettered(
    topics: Topics, receiver: Receiver
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=topics.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.decisions, b'{"id": "half a decision"}', key=b"k")
    finally:
        await producer.stop()
    good = _decision(1)
    await _produce(topics.bootstrap, topics.decisions, [good])
    async with _running(_config(topics, receiver)) as deliverer:
        await _until(lambda: deliverer.stats.dead_lettered == 1 and deliverer.stats.delivered == 1)
    (record,) = await _read_topic(topics.bootstrap, topics.dead_letter, 1, 20.0)
    letter = orjson.loads(record.value)
    assert letter["decision"] is None
    assert letter["raw"] == '{"id": "half a decision"}'
    assert letter["error"].startswith("invalid decision: ")
    assert record.key == b"k"
    assert [h.decision.id for h in receiver.hits] == [good.id]
