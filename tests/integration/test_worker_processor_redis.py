"""The batch processor on the real Redis store and outbox: two round trips per batch (one
read, one atomic write carrying the outbox), and the commit protocol still holds: a
redelivered batch re-emits from the outbox, a partial conflict reruns without loss."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import orjson
import pytest
from engine.worker.outbox import JointBatchIO, RedisOutbox
from redis.asyncio import Redis

from engine.models.state import CustomerState
from engine.state.redis import RedisStateStore
from engine.worker.process import BatchProcessor
from engine.worker.stats import WorkerStats
from tests.integration.redis_utils import open_store
from tests.integration.test_worker_processor import PACK, _records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def outbox(redis_url: str, prefix: str) -> AsyncIterator[RedisOutbox]:
    box = RedisOutbox(Redis.from_url(redis_url), f"{prefix}outbox:")
    yield box
    await box.close()


async def _seeded(store: RedisStateStore) -> None:
    states = await store.load([f"c-{c}" for c in range(4)])
    for st in states.values():
        st.consent = {"push": True, "email": True}
    await store.save(states)


def _processor(store: RedisStateStore, outbox: RedisOutbox) -> BatchProcessor:
    return BatchProcessor(store, outbox, WorkerStats(), decisions_topic="d",
                          dead_letter_topic="dl", worker_id="t")


def _ids(values: list[bytes]) -> list[str]:
    return [orjson.loads(v)["id"] for v in values]


async def test_two_round_trips_per_batch_and_none_for_the_outbox(
    store: RedisStateStore, outbox: RedisOutbox
) -> None:
    await _seeded(store)
    ops: list[str] = []
    store.observe = lambda op, _s: ops.append(op)
    outbox.observe = lambda op, _s: ops.append(op)
    p = _processor(store, outbox)
    assert isinstance(p.io, JointBatchIO)
    for start in (0, 8, 16):  # the first batch also loads the outbox: same read
        out = await p.process(PACK, _records(8, start))
        assert out.decisions >= 8
    assert ops == ["load", "save"] * 3


async def test_redelivery_after_state_write_reemits_from_outbox(
    store: RedisStateStore, outbox: RedisOutbox, redis_url: str
) -> None:
    await _seeded(store)
    first = await _processor(store, outbox).process(PACK, _records(8))
    sent = [r.value for r in first.records]
    # the process died before its transaction: a new one (new connections) gets them again
    store2 = await open_store(redis_url, store.prefix)
    outbox2 = RedisOutbox(Redis.from_url(redis_url), outbox.key_base)
    try:
        again = await _processor(store2, outbox2).process(PACK, _records(8))
    finally:
        await store2.close()
        await outbox2.close()
    assert [r.value for r in again.records] == sent
    assert again.reemitted == len(sent)


class RaceOnce(RedisStateStore):
    """Before its first batch write, another writer changes some of the batch's customers."""

    rival: RedisStateStore | None = None

    async def save_batch(self, by_partition: Mapping[int, Mapping[str, CustomerState]],
                         writes: Sequence[tuple[str, bytes | None]] = ()) -> None:
        rival, self.rival = self.rival, None
        if rival is not None:
            names = sorted(c for states in by_partition.values() for c in states)
            theirs = await rival.load(names[len(names) // 2:])
            for st in theirs.values():
                st.counters["rival"] = 1
            await rival.save(theirs)
        await super().save_batch(by_partition, writes)


async def test_partial_conflict_reruns_the_batch_exactly_once(
    store: RedisStateStore, outbox: RedisOutbox, redis_url: str, prefix: str
) -> None:
    await _seeded(store)
    racing = RaceOnce(Redis.from_url(redis_url), prefix=prefix)
    racing.rival = store
    try:
        p = _processor(racing, outbox)
        out = await p.process(PACK, _records(8))
    finally:
        await racing.close()
    assert out.runs == 2 and p.stats.conflicts == 1
    assert out.reemitted > 0  # the customers written in run 1 came back from the outbox
    states = await store.load([f"c-{c}" for c in range(4)])
    assert all(len([e for e in st.seen if e.startswith("ev-")]) == 2 for st in states.values())
    ids = _ids([r.value for r in out.records])
    assert len(ids) == len(set(ids)) >= 8
