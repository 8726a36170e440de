"""Invalid events go to the dead-letter topic with a reason and the original bytes; the worker
goes on with the next events."""

from __future__ import annotations

import base64

import orjson
import pytest

from engine.services import manager
from engine.worker.runtime import StreamWorker, WorkerOptions
from tests.integration.kafka_utils import (
    WorkerNames,
    after,
    delete_prefix,
    produce,
    read_committed,
    wait_committed,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _event(i: int, customer: str = "c-1", **over: object) -> dict[str, object]:
    ev: dict[str, object] = {"id": f"ev-{i}", "customer": customer, "type": "order_shipped",
                             "at": "2026-03-02T10:00:00+00:00",
                             "data": {"order": f"O-{i}", "carrier": "UPS"}}
    ev.update(over)
    return ev


async def test_invalid_events_are_dead_lettered(services: manager.Connection) -> None:
    names = WorkerNames.new("dlq", services.bootstrap_servers, services.redis_url)
    worker = StreamWorker(WorkerOptions(settings=names.settings(), worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False))
    await worker.start()
    missing = _event(2)
    del missing["type"]
    bad = [
        (b"c-1", b'{"id": "ev-1", "customer": "c-1", oops', "json"),
        (b"c-1", orjson.dumps(missing), "type"),
        (b"c-2", orjson.dumps(_event(3, "c-3")), "key"),
        (b"c-1", orjson.dumps(_event(4, at="2026-03-02T10:00:00")), "at"),
    ]
    try:
        meta = await produce(names.bootstrap, names.events,
                             [(k, v, None) for k, v, _ in bad]
                             + [(b"c-1", orjson.dumps(_event(5)), None)])
        await wait_committed(names.bootstrap, names.group, after(meta))
        dead = await read_committed(names.bootstrap, names.dead_letter)
        decisions = await read_committed(names.bootstrap, names.decisions)
        # the timestamps as stored: the producer's metadata can differ by a millisecond
        stored = {(r.partition, r.offset): r.timestamp
                  for r in await read_committed(names.bootstrap, names.events)}
    finally:
        await worker.stop()
        await delete_prefix(names.redis_url, names.prefix)

    assert len(dead) == len(bad)
    by_source = {(orjson.loads(r.value)["source"]["partition"],
                  orjson.loads(r.value)["source"]["offset"]): r for r in dead}
    for (key, value, field), m in zip(bad, meta, strict=False):
        rec = by_source[(m.partition, m.offset)]
        body = orjson.loads(rec.value)
        assert base64.b64decode(body["value_b64"]) == value  # the original bytes
        assert body["source"] == {"topic": names.events, "partition": m.partition,
                                  "offset": m.offset,
                                  "timestamp_ms": stored[(m.partition, m.offset)],
                                  "key": key.decode()}
        assert body["reason"].startswith(field), body["reason"]
        assert dict(rec.headers)["tact-reason"].decode() == body["reason"]
        assert rec.key == key
    # the valid event after the bad ones was decided
    assert {orjson.loads(d.value)["event_id"] for d in decisions} == {"ev-5"}
    assert worker.stats.dead_letters == {"json": 1, "schema": 2, "key": 1}
