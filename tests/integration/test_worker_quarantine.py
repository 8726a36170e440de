"""A customer whose stored state does not decode is quarantined: the batch processor on the
real Redis dead-letters their events (``state_corrupt``, original bytes), never writes over
the stored value, decides everyone else's, and picks the customer up again once an operator
reset the state (issue 9, item 6)."""

from __future__ import annotations

import base64

import orjson
import pytest
import redis

from engine.models.state import CustomerState
from engine.state.redis import RedisStateStore
from engine.state.redis.quarantine import reset
from engine.worker.process import InRecord
from tests.integration.test_worker_processor_redis import _worker
from tests.unit.test_worker_processor import PACK, MemoryChangelog, _records, _seeded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _with_bytes(records: list[InRecord]) -> list[InRecord]:
    for r in records:
        r.key, r.value = b"k", b"original-" + str(r.offset).encode()
    return records


async def test_quarantined_customer_is_dead_lettered_until_reset(
        store: RedisStateStore, admin: redis.Redis) -> None:
    log = MemoryChangelog()
    await _seeded(log)
    proc = _worker(store, log)
    first = await proc.process(PACK, _records(4))  # brings the partition up
    await proc.apply(first, log.commit(first))
    corrupt = b"%016x" % 7 + b"\xc1 not msgpack"
    admin.set(store.state_key("c-1", 0), corrupt)

    out = await proc.process(PACK, _with_bytes(_records(8, start=4)))  # c-0..c-3, twice
    await proc.apply(out, log.commit(out))
    out.account()
    dead = [orjson.loads(r.value) for r in out.records if r.topic == "dl"]
    decided = {orjson.loads(r.value)["customer"] for r in out.records if r.topic == "d"}
    assert [d["source"]["offset"] for d in dead] == [5, 9]
    assert all(d["code"] == "state_corrupt" and d["reason"].startswith("state_corrupt")
               for d in dead)
    assert [base64.b64decode(d["value_b64"]) for d in dead] == [b"original-5", b"original-9"]
    assert decided == {"c-0", "c-2", "c-3"}
    assert proc.stats.dead_letters["state_corrupt"] == 2
    assert admin.get(store.state_key("c-1", 0)) == corrupt  # never written over
    assert admin.get(store.quarantine_key("c-1", 0)) == corrupt

    # an operator resets the customer: their next event is decided again
    await reset(store, "c-1", partition=0)
    later = await proc.process(PACK, _with_bytes(_records(4, start=12)))
    assert {orjson.loads(r.value)["customer"] for r in later.records if r.topic == "d"} == \
        {"c-0", "c-1", "c-2", "c-3"}
    assert not [r for r in later.records if r.topic == "dl"]
    assert isinstance((await store.load(["c-1"], 0))["c-1"], CustomerState)
