"""The event publisher and `tact publish` against the real local Kafka."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]
from kafka import KafkaConsumer, TopicPartition
from typer.testing import CliRunner

from connectors.http import IngestHandler, kafka_sender
from connectors.kafka import InvalidEventsError, Publisher, PublishError, publish_file
from engine.cli import connectors as connectors_cli
from engine.errors import EventValidationError
from engine.models.event import Event, parse_event
from engine.services import manager

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PARTITIONS = 3


def _topic(services: manager.Connection) -> str:
    name = f"tact-it-publish-{uuid.uuid4().hex[:10]}"
    manager.ensure_topics(services.bootstrap_servers, {name: PARTITIONS})
    return name


def _event(i: int, customer: str | None = None) -> dict[str, Any]:
    return {
        "id": f"e{i}",
        "customer": customer or f"cust-{i % 4}",
        "type": "purchase",
        "at": f"2024-05-01T09:{i % 60:02d}:00+02:00",
        "data": {"amount": i},
    }


def _read_all(bootstrap: str, topic: str, expected: int, wait_s: float = 20.0) -> list[Any]:
    """Every record of ``topic`` (all partitions, from the start); waits for ``expected``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        records: list[Any] = []
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            if len(records) >= expected and expected > 0:
                # one more short poll: catches records beyond what we expected
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


def _end_offsets(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _write_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """A file of valid events with bad lines mixed in; returns (valid events, bad line numbers)."""
    valid = [_event(i) for i in range(12)]
    lines = [orjson.dumps(e).decode() for e in valid]
    lines.insert(2, '{"id": "bad1", "customer": "c", "type": "x"}')  # line 3: no `at`
    lines.insert(5, "not json at all")  # line 6
    lines.insert(7, "")  # line 8: blank, skipped silently
    lines.insert(9, orjson.dumps(_event(99) | {"at": "2024-05-01T09:00:00"}).decode())  # line 10
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return valid, [3, 6, 10]


def _assert_arrived_keyed(records: list[Any], valid: list[dict[str, Any]]) -> None:
    assert len(records) == len(valid)
    by_id = {parse_event(r.value).id: r for r in records}
    assert set(by_id) == {e["id"] for e in valid}
    partition_of: dict[str, int] = {}
    for event in valid:
        record = by_id[event["id"]]
        assert record.key == event["customer"].encode()
        got = parse_event(record.value)
        assert got == parse_event(event)
        assert orjson.loads(record.value)["at"] == event["at"]  # ISO 8601, offset kept
        # same customer, same partition: per-customer order is preserved
        assert partition_of.setdefault(event["customer"], record.partition) == record.partition


def test_publish_file_sends_the_valid_lines_keyed_by_customer(
    services: manager.Connection, tmp_path: Path
) -> None:
    topic = _topic(services)
    path = tmp_path / "events.jsonl"
    valid, bad_lines = _write_jsonl(path)
    with Publisher(services.bootstrap_servers, topic) as publisher:
        report = publish_file(publisher, path)
    assert report.sent == len(valid)
    assert [n for n, _ in report.bad] == bad_lines
    reasons = dict(report.bad)
    assert reasons[3].startswith("at:")
    assert "json" in reasons[6].lower()
    assert reasons[10].startswith("at:")
    _assert_arrived_keyed(_read_all(services.bootstrap_servers, topic, len(valid)), valid)


def test_cli_publish_reports_bad_lines_and_exits_1(
    services: manager.Connection, tmp_path: Path
) -> None:
    topic = _topic(services)
    path = tmp_path / "events.jsonl"
    valid, bad_lines = _write_jsonl(path)
    app = typer.Typer()
    connectors_cli.register(app)
    args = ["publish", str(path), "--topic", topic, "--brokers", services.bootstrap_servers]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    for number in bad_lines:
        assert f"{path}:{number}:" in result.stderr
    assert f"sent {len(valid)} event(s) to {topic}" in result.stdout
    _assert_arrived_keyed(_read_all(services.bootstrap_servers, topic, len(valid)), valid)


def test_cli_publish_strict_sends_nothing_if_a_line_is_bad(
    services: manager.Connection, tmp_path: Path
) -> None:
    topic = _topic(services)
    path = tmp_path / "events.jsonl"
    _write_jsonl(path)
    app = typer.Typer()
    connectors_cli.register(app)
    args = ["publish", str(path), "--topic", topic, "--brokers", services.bootstrap_servers]
    result = CliRunner().invoke(app, [*args, "--strict"])
    assert result.exit_code == 1, result.output
    assert "nothing sent" in result.stderr
    assert _end_offsets(services.bootstrap_servers, topic) == 0

    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(orjson.dumps(_event(i)).decode() for i in range(5)) + "\n")
    args[1] = str(clean)
    result = CliRunner().invoke(app, [*args, "--strict"])
    assert result.exit_code == 0, result.output
    assert len(_read_all(services.bootstrap_servers, topic, 5)) == 5


def test_publisher_api_validates_and_keys(services: manager.Connection) -> None:
    topic = _topic(services)
    with Publisher(services.bootstrap_servers, topic) as publisher:
        # A dict, a JSON string and a model are all validated and sent.
        first = publisher.publish(_event(1, "alice"), wait=True)
        assert isinstance(first, Event)
        publisher.publish(orjson.dumps(_event(2, "bob")).decode())
        publisher.publish(parse_event(_event(3, "alice")))
        # An invalid event names the field and is not sent.
        with pytest.raises(EventValidationError, match="customer"):
            publisher.publish(_event(4, "bad customer id with spaces"))
        # publish_many is all-or-nothing and lists each bad index.
        batch: list[Any] = [_event(5), _event(6) | {"type": "Nope"}, _event(7), {"id": "x"}]
        with pytest.raises(InvalidEventsError) as info:
            publisher.publish_many(batch)
        assert [i for i, _ in info.value.errors] == [1, 3]
        sent = publisher.publish_many([_event(8), _event(9)])
        assert [e.id for e in sent] == ["e8", "e9"]
        publisher.flush()
        assert publisher.sent == 5
    records = _read_all(services.bootstrap_servers, topic, 5)
    assert sorted(parse_event(r.value).id for r in records) == ["e1", "e2", "e3", "e8", "e9"]
    assert {r.key for r in records if parse_event(r.value).id in {"e1", "e3"}} == {b"alice"}


def test_unreachable_kafka_is_a_publish_error() -> None:
    with pytest.raises(PublishError, match="cannot connect"):
        Publisher("127.0.0.1:1", "nowhere", bootstrap_timeout_ms=1500)


async def test_http_ingest_writes_the_same_wire_format(services: manager.Connection) -> None:
    """POST /events' core with the aiokafka sender: what arrives equals what the publisher sends."""
    topic = _topic(services)
    producer = AIOKafkaProducer(bootstrap_servers=services.bootstrap_servers, acks="all")
    await producer.start()
    try:
        handler = IngestHandler(kafka_sender(producer, topic), token="t0ken")
        events = [_event(i) for i in range(6)]
        status, reply = await handler.handle(orjson.dumps(events), "Bearer t0ken")
        assert (status, reply["ids"]) == (202, [e["id"] for e in events])
        status, _ = await handler.handle(orjson.dumps([_event(7), {"id": "x"}]), "Bearer t0ken")
        assert status == 400  # all-or-nothing: e7 not sent either
    finally:
        await producer.stop()
    _assert_arrived_keyed(_read_all(services.bootstrap_servers, topic, len(events)), events)
