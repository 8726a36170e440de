"""A customer whose stored state does not decode is quarantined: the batch processor on the
real Redis dead-letters their events (``state_corrupt``, original bytes), never writes over
the stored value, decides everyone else's, and picks the customer up again once an operator
reset the state (issue 9, item 6)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import orjson
import pytest
import redis
from engine.worker.outbox import RedisOutbox
from redis.asyncio import Redis

from engine.models.state import CustomerState
from engine.state.redis import RedisStateStore
from engine.state.redis.quarantine import reset
from engine.worker.process import BatchProcessor, InRecord
from engine.worker.stats import WorkerStats
from tests.integration.test_worker_processor import PACK, _records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def outbox(redis_url: str, prefix: str) -> AsyncIterator[RedisOutbox]:
    box = RedisOutbox(Redis.from_url(redis_url), f"{prefix}outbox:")
    yield box
    await box.close()


def _with_bytes(records: list[InRecord]) -> list[InRecord]:
    for r in records:
        r.key, r.value = b"k", b"original-" + str(r.offset).encode()
    return records


async def test_quarantined_customer_is_dead_lettered_until_reset(
        store: RedisStateStore, outbox: RedisOutbox, admin: redis.Redis) -> None:
    states = await store.load([f"c-{c}" for c in range(4)])
    for st in states.values():
        st.consent = {"push": True, "email": True}
    await store.save(states)
    corrupt = b"%016x" % 7 + b"\xc1 not msgpack"
    admin.set(store.state_key("c-1"), corrupt)
    stats = WorkerStats()
    proc = BatchProcessor(store, outbox, stats, decisions_topic="d", dead_letter_topic="dl")

    out = await proc.process(PACK, _with_bytes(_records(8)))  # customers c-0..c-3, twice
    out.account()
    dead = [orjson.loads(r.value) for r in out.records if r.topic == "dl"]
    decided = {orjson.loads(r.value)["customer"] for r in out.records if r.topic == "d"}
    assert [d["source"]["offset"] for d in dead] == [1, 5]
    assert all(d["code"] == "state_corrupt" and d["reason"].startswith("state_corrupt")
               for d in dead)
    assert [base64.b64decode(d["value_b64"]) for d in dead] == [b"original-1", b"original-5"]
    assert decided == {"c-0", "c-2", "c-3"}
    assert stats.dead_letters["state_corrupt"] == 2
    assert admin.get(store.state_key("c-1")) == corrupt  # never written over
    assert admin.get(store.quarantine_key("c-1")) == corrupt

    # an operator resets the customer: their next event is decided again
    await reset(store, "c-1")
    later = await proc.process(PACK, _with_bytes(_records(4, start=8)))
    assert {orjson.loads(r.value)["customer"] for r in later.records if r.topic == "d"} == \
        {"c-0", "c-1", "c-2", "c-3"}
    assert not [r for r in later.records if r.topic == "dl"]
    assert isinstance((await store.load(["c-1"]))["c-1"], CustomerState)
