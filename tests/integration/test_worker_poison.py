"""No input stops a partition (issue 9): a real worker is fed each poison event of the issue,
over HTTP and straight to Kafka. Ingest refuses them with a 4xx and the reason; from Kafka
they are dead-lettered with their reason codes; the worker stays ready and decides the next
good event of the same customer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from engine.services import manager
from tests.integration.kafka_utils import (
    WorkerNames,
    after,
    delete_prefix,
    http,
    produce,
    read_committed,
    wait_committed,
)
from tests.integration.worker_proc import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TOKEN = "poison-test-token"


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# (name, event type, "at", data): each stopped the worker for good before issue 9
POISON: list[tuple[str, str, str, dict[str, Any]]] = [
    ("year 10000 in UTC", "app_open", "9999-12-31T23:59:59-12:00", {}),
    ("year 0", "app_open", "0001-01-01T00:30:00+01:00", {}),
    ("promotion in quiet hours at the end of time", "app_open", "9999-12-31T23:59:59Z", {}),
    ("integer over 64 bits", "order_shipped", "", {"order": 2**70, "carrier": "UPS"}),
    ("nested 300 deep", "order_shipped", "", {"order": "O-1", "carrier": _deep(300)}),
]


def _body(i: int, customer: str, etype: str, at: str, data: dict[str, Any]) -> bytes:
    now = datetime.now(UTC).isoformat()
    # the stdlib's json writes integers of any size, as any producer might
    return json.dumps({"id": f"{customer}-ev-{i}", "customer": customer, "type": etype,
                       "at": at or now, "data": data}).encode()


async def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


@pytest.fixture
def names(services: manager.Connection) -> Iterator[WorkerNames]:
    n = WorkerNames.new("poison", services.bootstrap_servers, services.redis_url)
    yield n
    asyncio.run(delete_prefix(n.redis_url, n.prefix))


async def test_poison_events_never_stop_the_worker(names: WorkerNames, tmp_path: Path) -> None:
    with WorkerProcess(names, tmp_path / "worker.log",
                       env={"TACT_API_TOKEN": TOKEN}) as worker:
        await worker.wait_ready()
        url = f"{worker.base}/events"
        consent = {"attributes": {"tz": "UTC", "segment": "bargain_hunter"},
                   "consent": {"push": True, "email": True}}
        # over HTTP: every poison event is refused with a 4xx and its reason
        for i, (what, etype, at, data) in enumerate(POISON):
            customer = f"h-{i}"
            status, _ = await _post(url, _body(0, customer, "profile_updated", "", consent))
            assert status == 202, what
            status, reply = await _post(url, _body(1, customer, etype, at, data))
            assert 400 <= status < 500, (what, status, reply)
            assert reply.get("errors") or reply.get("error"), (what, reply)
            status, _ = await _post(url, _body(2, customer, "app_open", "", {}))
            assert status == 202, what

        # straight to Kafka: each poison event between two good ones of the same customer
        records: list[tuple[bytes, bytes, None]] = []
        for i, (_what, etype, at, data) in enumerate(POISON):
            customer = f"k-{i}"
            records += [(customer.encode(), _body(0, customer, "profile_updated", "", consent),
                         None),
                        (customer.encode(), _body(1, customer, etype, at, data), None),
                        (customer.encode(), _body(2, customer, "app_open", "", {}), None)]
        meta = await produce(names.bootstrap, names.events, records)
        await wait_committed(names.bootstrap, names.group, after(meta), timeout=60)
        ready, _ = await http("GET", f"{worker.base}/readyz")
        assert ready == 200, worker.log_tail()
        assert worker.running
        dead = [orjson.loads(r.value)
                for r in await read_committed(names.bootstrap, names.dead_letter)]
        decided = {orjson.loads(r.value)["event_id"]
                   for r in await read_committed(names.bootstrap, names.decisions)}

    assert len(dead) == len(POISON), dead
    by_customer = {d["source"]["key"]: d for d in dead}
    for i, (what, *_rest) in enumerate(POISON):
        d = by_customer[f"k-{i}"]
        # too deep for the JSON parser itself is "json"; every other one breaks a bound
        assert d["code"] == ("json" if "nested" in what else "schema"), (what, d)
        assert d["reason"], what
        # the next good event of the same customer was decided, over both paths
        assert f"k-{i}-ev-2" in decided, what
        assert f"h-{i}-ev-2" in decided, what
