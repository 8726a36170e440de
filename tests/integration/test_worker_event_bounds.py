"""Events out of bounds, straight from a Kafka producer, are dead-lettered with the same
reason ingest gives; the worker goes on. The bounds come from the worker's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


def _event(i: int, **over: object) -> bytes:
    ev: dict[str, object] = {"id": f"ev-{i}", "customer": "c-1", "type": "order_shipped",
                             "at": "2026-03-02T10:00:00+00:00",
                             "data": {"order": f"O-{i}", "carrier": "UPS"}}
    ev.update(over)
    return orjson.dumps(ev)


async def test_out_of_bounds_events_are_dead_lettered(services: manager.Connection) -> None:
    names = WorkerNames.new("bounds", services.bootstrap_servers, services.redis_url)
    settings = names.settings(event_max_ahead=timedelta(days=1))
    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False))
    await worker.start()
    in_two_days = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    bad = [
        (_event(1, at="9999-12-31T23:59:59-12:00"),
         "at: 9999-12-31T23:59:59-12:00 is after the latest accepted time"),
        (_event(2, at=in_two_days), f"at: {in_two_days} is after the latest accepted time"),
        (_event(3, at="0001-01-01T00:30:00+01:00"),
         "at: 0001-01-01T00:30:00+01:00 is before the earliest accepted time"),
        (_event(4).replace(b'"UPS"', b"18446744073709551616"),
         "data.carrier: integer of 65 bits, outside the signed 64-bit range"),
        (_event(5).replace(b'"UPS"', b'{"a":' * 250 + b"1" + b"}" * 250),
         "json: not valid JSON (recursion limit exceeded"),
    ]
    try:
        meta = await produce(names.bootstrap, names.events,
                             [(b"c-1", value, None) for value, _ in bad]
                             + [(b"c-1", _event(6), None)])
        await wait_committed(names.bootstrap, names.group, after(meta))
        dead = await read_committed(names.bootstrap, names.dead_letter)
        decisions = await read_committed(names.bootstrap, names.decisions)
    finally:
        await worker.stop()
        await delete_prefix(names.redis_url, names.prefix)

    reasons = {orjson.loads(r.value)["source"]["offset"]: orjson.loads(r.value)["reason"]
               for r in dead}
    assert len(reasons) == len(bad)
    for (_, expected), m in zip(bad, meta, strict=False):
        assert reasons[m.offset].startswith(expected), reasons[m.offset]
    # the valid event after the bad ones was decided: the worker did not stop
    assert {orjson.loads(d.value)["event_id"] for d in decisions} == {"ev-6"}
    assert worker.stats.dead_letters == {"json": 1, "schema": 4}
