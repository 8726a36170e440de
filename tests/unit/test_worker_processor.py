"""The batch processor's side of the commit protocol, on the memory store with a changelog
kept in memory: nothing is written before the commit (a batch run again gives the very
same records), each changed state goes to the changelog, the store takes a committed batch
with its mark, and a store that lost data or fell behind is brought up to the changelog
before a batch reads it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from engine.errors import StateStoreError
from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.state.memory import MemoryStateStore
from engine.worker.changelog import state_record
from engine.worker.codec import DeadLetter, Source
from engine.worker.process import BatchProcessor, InRecord, Processed
from engine.worker.restore import Chunk, Restorer
from engine.worker.stats import WorkerStats

PACK = load_pack(Path(__file__).resolve().parents[2] / "rules")
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class MemoryChangelog:
    """The changelog topic in memory: committed records per partition, offsets from 0."""

    def __init__(self) -> None:
        self.parts: dict[int, list[tuple[str, bytes | None, float]]] = {}
        self.ends_asked = 0

    def commit(self, out: Processed, topic: str = "s") -> dict[int, int]:
        """What the worker's transaction does with the batch's changelog records: append
        them; the marks (position after each partition's records)."""
        marks: dict[int, int] = {}
        for r in out.records:
            if r.topic == topic and r.partition is not None and r.key is not None:
                log = self.parts.setdefault(r.partition, [])
                log.append((r.key.decode(), r.value, time.time()))  # Kafka's CreateTime
                marks[r.partition] = len(log)
        return marks

    async def end(self, partition: int) -> int:
        self.ends_asked += 1
        return len(self.parts.get(partition, []))

    async def read(self, partition: int, start: int, end: int
                   ) -> AsyncIterator[tuple[Chunk, int]]:
        log = self.parts.get(partition, [])
        for i in range(start, end, 2):  # small chunks, to cross chunk boundaries
            yield log[i:min(i + 2, end)], min(i + 2, end)


def _records(n: int, start: int = 0, partition: int = 0) -> list[InRecord]:
    out = []
    for i in range(start, start + n):
        ev = parse_event({"id": f"ev-{i}", "customer": f"c-{i % 4}", "type": "order_shipped",
                          "at": AT.isoformat(), "data": {"order": f"O-{i}", "carrier": "UPS"}})
        out.append(InRecord(partition, i, Envelope(ev, AT.timestamp())))
    return out


def _worker(store: MemoryStateStore, log: MemoryChangelog) -> BatchProcessor:
    stats = WorkerStats()
    return BatchProcessor(store, stats, decisions_topic="d", dead_letter_topic="dl",
                          state_topic="s", restorer=Restorer(store, log, stats), worker_id="t")


async def _seeded(log: MemoryChangelog) -> MemoryStateStore:
    """A store rebuilt from a changelog holding four consenting customers."""
    store = MemoryStateStore()
    for c in range(4):
        st = CustomerState(f"c-{c}", consent={"push": True, "email": True})
        key, value = state_record(st)
        log.parts.setdefault(0, []).append((key.decode(), value, time.time()))
    return store


def _ids(out: Processed, topic: str = "d") -> list[str]:
    return [orjson.loads(r.value)["id"] for r in out.records if r.topic == topic]


async def test_nothing_is_written_before_the_commit_and_a_rerun_is_identical() -> None:
    log = MemoryChangelog()
    store = await _seeded(log)
    first = await _worker(store, log).process(PACK, _records(8))
    assert len(_ids(first)) >= 8
    assert sorted(r.key for r in first.records if r.topic == "s") == \
        [f"c-{c}".encode() for c in range(4)]  # one changelog record per changed customer
    # the worker died before its transaction committed: a new one runs the batch again
    again = await _worker(store, log).process(PACK, _records(8))
    assert [(r.topic, r.key, r.value) for r in again.records] == \
        [(r.topic, r.key, r.value) for r in first.records]
    # committed and applied: the events are now duplicates
    p = _worker(store, log)
    out = await p.process(PACK, _records(8))
    await p.apply(out, log.commit(out))
    dup = await p.process(PACK, _records(8))
    dup.account()
    assert dup.records == [] and p.stats.duplicates == 8


async def test_a_store_that_lost_everything_is_rebuilt_before_the_next_batch() -> None:
    log = MemoryChangelog()
    store = await _seeded(log)
    p = _worker(store, log)
    out = await p.process(PACK, _records(4))
    await p.apply(out, log.commit(out))
    asked = log.ends_asked
    out = await p.process(PACK, _records(4, start=4))  # the mark is as written: no Kafka
    await p.apply(out, log.commit(out))
    assert log.ends_asked == asked
    lost = MemoryStateStore()  # the same worker, its store flushed
    p.store = lost
    assert p.restorer is not None
    p.restorer.store = lost
    replay = await p.process(PACK, _records(8))  # already seen: the state came back
    replay.account()
    assert replay.records == [] and p.stats.duplicates == 8
    # the first batch found no mark either (nothing was ever written): rebuilt twice, the
    # second time from the 4 seeds and the 8 records the two batches committed
    assert p.stats.restores["rebuild"] == 2 and p.stats.restored_states == 4 + 12


async def test_a_store_behind_the_changelog_is_caught_up() -> None:
    log = MemoryChangelog()
    store = await _seeded(log)
    p = _worker(store, log)
    out = await p.process(PACK, _records(4))
    log.commit(out)  # committed, but the worker died before writing the store
    p2 = _worker(store, log)
    again = await p2.process(PACK, _records(4))
    again.account()
    assert again.records == [] and p2.stats.duplicates == 4
    assert p2.stats.restores["catch_up"] == 1 and p2.stats.restored_states == 4


async def test_another_writer_ahead_of_this_worker_fails_the_batch() -> None:
    log = MemoryChangelog()
    store = await _seeded(log)
    p, rival = _worker(store, log), _worker(store, log)
    out = await p.process(PACK, _records(2))
    await p.apply(out, log.commit(out))
    out = await rival.process(PACK, _records(2, start=2))
    await rival.apply(out, log.commit(out))
    with pytest.raises(StateStoreError, match="another worker owns the partition"):
        await p.process(PACK, _records(2, start=4))


async def test_dead_letters_pass_through() -> None:
    log = MemoryChangelog()
    store = await _seeded(log)
    dl = DeadLetter("json: not valid JSON", Source("t", 0, 5), b"k", b"{", "json")
    out = await _worker(store, log).process(PACK, [InRecord(0, 5, dl)])
    assert [(r.topic, r.key) for r in out.records] == [("dl", b"k")]
    assert orjson.loads(out.records[0].value)["source"]["offset"] == 5


async def test_ticks_fire_once_and_go_to_the_changelog() -> None:
    log = MemoryChangelog()
    store = MemoryStateStore()
    p = _worker(store, log)
    consent = parse_event({"id": "p-1", "customer": "c-1", "type": "profile_updated",
                           "at": AT.isoformat(),
                           "data": {"attributes": {}, "consent": {"email": True}}})
    cart = parse_event({"id": "cart-1", "customer": "c-1", "type": "cart_updated",
                        "at": AT.isoformat(), "data": {"items": 1, "value": 5}})
    out = await p.process(PACK, [InRecord(0, 0, Envelope(consent, AT.timestamp())),
                                 InRecord(0, 1, Envelope(cart, AT.timestamp()))])
    await p.apply(out, log.commit(out))
    assert await store.pending_followups([0]) == 1
    tick = [InRecord(0, 0, AT.timestamp() + 3600)]
    fired = await p.process(PACK, tick)
    assert [orjson.loads(r.value)["rule"] for r in fired.records if r.topic == "d"] == \
        ["cart_reminder"]
    assert [r.key for r in fired.records if r.topic == "s"] == [b"c-1"]
    await p.apply(fired, log.commit(fired))
    assert await store.pending_followups([0]) == 0
    later = await p.process(PACK, [InRecord(0, 1, AT.timestamp() + 7200)])
    assert later.records == []
