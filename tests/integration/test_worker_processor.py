"""The batch processor's side of the commit protocol, without Kafka or Redis (memory store and
memory outbox): a redelivered batch whose state was written re-emits its decisions from the
outbox, a genuine duplicate emits nothing, and a partial state conflict re-runs the batch
without losing or repeating a decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from engine.errors import StateConflictError
from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.state.memory import MemoryStateStore
from engine.worker.codec import DeadLetter, Source
from engine.worker.outbox import MemoryOutbox
from engine.worker.process import BatchProcessor, InRecord
from engine.worker.stats import WorkerStats

PACK = load_pack(Path(__file__).resolve().parents[2] / "rules")
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _records(n: int, start: int = 0) -> list[InRecord]:
    out = []
    for i in range(start, start + n):
        ev = parse_event({"id": f"ev-{i}", "customer": f"c-{i % 4}", "type": "order_shipped",
                          "at": AT.isoformat(), "data": {"order": f"O-{i}", "carrier": "UPS"}})
        out.append(InRecord("e0", 0, i, Envelope(ev, AT.timestamp())))
    return out


def _store() -> MemoryStateStore:
    store = MemoryStateStore()
    for c in range(4):
        store.seed(CustomerState(f"c-{c}", consent={"push": True, "email": True}))
    return store


def _processor(store: MemoryStateStore, outbox: MemoryOutbox) -> BatchProcessor:
    return BatchProcessor(store, outbox, WorkerStats(), decisions_topic="d",
                          dead_letter_topic="dl", worker_id="t")


def _ids(values: list[bytes]) -> list[str]:
    return [orjson.loads(v)["id"] for v in values]


async def test_redelivery_after_state_write_reemits_from_outbox() -> None:
    store, outbox = _store(), MemoryOutbox()
    first = await _processor(store, outbox).process(PACK, _records(8))
    sent = [r.value for r in first.records]
    assert len(sent) >= 8 and first.reemitted == 0
    # the process died before its transaction: a new one gets the same records again
    again = await _processor(store, outbox).process(PACK, _records(8))
    assert [r.value for r in again.records] == sent
    assert again.reemitted == len(sent) and again.decisions == len(sent)
    # a batch boundary that differs after the restart: part of it, then the rest and more
    p = _processor(store, outbox)
    part = await p.process(PACK, _records(3))
    rest = await p.process(PACK, _records(9)[3:])
    assert _ids([r.value for r in part.records + rest.records])[:len(sent)] == _ids(sent)


async def test_genuine_duplicate_emits_nothing() -> None:
    store, outbox = _store(), MemoryOutbox()
    p = _processor(store, outbox)
    await p.process(PACK, _records(4))
    ev = _records(1)[0].item
    assert isinstance(ev, Envelope)
    dup = await p.process(PACK, [InRecord("e0", 0, 100, ev)])  # same event, new offset
    dup.account()
    assert dup.records == [] and p.stats.duplicates == 1


async def test_dead_letters_pass_through() -> None:
    store, outbox = _store(), MemoryOutbox()
    dl = DeadLetter("json: not valid JSON", Source("t", 0, 5), b"k", b"{", "json")
    out = await _processor(store, outbox).process(PACK, [InRecord("e0", 0, 5, dl)])
    assert [(r.topic, r.key) for r in out.records] == [("dl", b"k")]
    assert orjson.loads(out.records[0].value)["source"]["offset"] == 5


class ConflictOnce(MemoryStateStore):
    """Writes half of the first save's customers, then reports a conflict for the rest
    (what the Redis store does when another writer got to some customers first)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def save(self, states: Mapping[str, CustomerState]) -> None:
        if not self.failed:
            self.failed = True
            names = sorted(states)
            await super().save({c: states[c] for c in names[: len(names) // 2]})
            raise StateConflictError(f"conflict on {names[len(names) // 2:]}")
        await super().save(states)


async def test_partial_conflict_reruns_the_batch_exactly_once() -> None:
    reference = await _processor(_store(), MemoryOutbox()).process(PACK, _records(8))
    store = ConflictOnce()
    for c in range(4):
        store.seed(CustomerState(f"c-{c}", consent={"push": True, "email": True}))
    p = _processor(store, MemoryOutbox())
    out = await p.process(PACK, _records(8))
    assert out.runs == 2 and p.stats.conflicts == 1
    assert out.reemitted > 0  # the customers written in run 1 came back from the outbox
    assert sorted(_ids([r.value for r in out.records])) == sorted(
        _ids([r.value for r in reference.records]))


@pytest.mark.parametrize("runs", [1, 2])
async def test_ticks_fire_once(runs: int) -> None:
    store, outbox = MemoryStateStore(), MemoryOutbox()
    store.seed(CustomerState("c-1", consent={"email": True}))
    cart = parse_event({"id": "cart-1", "customer": "c-1", "type": "cart_updated",
                        "at": AT.isoformat(), "data": {"items": 1, "value": 5}})
    p = _processor(store, outbox)
    await p.process(PACK, [InRecord("e0", 0, 0, Envelope(cart, AT.timestamp()))])
    tick = [InRecord("t0", 0, 0, AT.timestamp() + 3600)]
    fired = await p.process(PACK, tick)
    assert [orjson.loads(r.value)["rule"] for r in fired.records] == ["cart_reminder"]
    for _ in range(runs):  # redelivered tick (state already written): from the outbox
        again = await _processor(store, outbox).process(PACK, tick)
        assert [r.value for r in again.records] == [r.value for r in fired.records]
    later = await _processor(store, outbox).process(PACK, [InRecord("t0", 0, 1, AT.timestamp()
                                                                     + 7200)])
    assert later.records == []
