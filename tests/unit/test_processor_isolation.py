"""One record's fault is that record's dead letter, never the batch's (issue 9, item 1).

The batch processor runs on the memory store here (the same code the worker runs
on Redis). A bad event is one that gets past decoding but cannot be processed: an integer
over 64 bits that ends in the customer's state (msgpack refuses it). (One that ends in a
decision's params is no fault: that decision is suppressed with ``param_error``.) The
worker's decoder refuses those at the edge; the processor must still hold if anything like
them gets through.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import StateStoreError
from engine.models.event import Envelope, Event
from engine.models.state import CustomerState, PendingFollowup
from engine.pack.loader import load_pack
from engine.pipeline import decide, tick
from engine.state.memory import MemoryStateStore
from engine.state.wire import pack_stored
from engine.worker.codec import Source
from engine.worker.process import BatchProcessor, InRecord, Processed
from engine.worker.stats import WorkerStats

PACK = load_pack(Path(__file__).resolve().parents[2] / "rules")
AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CUSTOMERS = [f"c-{i}" for i in range(5)]
HUGE = 2**70
EXAMPLES = int(os.environ.get("TACT_FUZZ_EXAMPLES", "40"))

GOOD: dict[str, dict[str, Any]] = {
    "order_shipped": {"order": "O-1", "carrier": "UPS"},
    "cart_updated": {"items": 2, "value": 40.5},
    "purchase": {"order": "O-2", "value": 12.0},
    "support_ticket_opened": {"ticket": "T-1", "topic": "billing"},
    "support_ticket_closed": {"ticket": "T-1"},
    "app_open": {},
    "nps_submitted": {"score": 3},
}
# (type, data) that get past decoding here and fail later, in the state.
# Not a bad cart_updated: a later good one overwrites what it left in the state, so it can
# be processed without harm (Hypothesis found that), and then it is no dead letter.
BAD: list[tuple[str, dict[str, Any]]] = [
    ("profile_updated", {"attributes": {"segment": HUGE}, "consent": {}}),
]
BAD_TYPE, BAD_DATA = BAD[0]


def _event(i: int, customer: str, etype: str, data: dict[str, Any]) -> Event:
    # model_construct: these events stand for whatever gets past the edge's validation
    return Event.model_construct(id=f"ev-{i}", customer=customer, type=etype,
                                 at=AT + timedelta(minutes=i), data=data)


def _record(offset: int, event: Event) -> InRecord:
    # the stdlib's json writes integers of any size, as a foreign producer might
    value = json.dumps({"id": event.id, "customer": event.customer, "type": event.type,
                        "at": event.at.isoformat(), "data": event.data}).encode()
    src = Source("events", 0, offset, 1_000 + offset)
    return InRecord(0, offset, Envelope(event, event.at.timestamp()), src,
                    event.customer.encode(), value)


def _store() -> MemoryStateStore:
    store = MemoryStateStore()
    for c in CUSTOMERS:
        store.seed(CustomerState(c, consent={"push": True, "email": True, "sms": True}))
    return store


async def _run(events: list[Event]) -> tuple[Processed, MemoryStateStore, WorkerStats]:
    store, stats = _store(), WorkerStats()
    proc = BatchProcessor(store, stats, decisions_topic="d",
                          dead_letter_topic="dl", worker_id="t")
    out = await proc.process(PACK, [_record(i, e) for i, e in enumerate(events)])
    await proc.apply(out, {})
    out.account()
    return out, store, stats


async def _states(store: MemoryStateStore) -> dict[str, list[Any]]:
    """Each customer's state as stored, less the version (a run in parts saves more often)."""
    loaded = await store.load(CUSTOMERS)
    return {c: [*w[:2], *w[3:]] for c, st in loaded.items() for w in (st.to_wire(),)}


good_events = st.lists(
    st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(sorted(GOOD))), min_size=1,
    max_size=25)


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(good=good_events, bad=st.sampled_from(BAD), where=st.integers(min_value=0),
       who=st.sampled_from(CUSTOMERS))
async def test_a_bad_event_changes_nothing_for_the_good_ones(
        good: list[tuple[str, str]], bad: tuple[str, dict[str, Any]], where: int,
        who: str) -> None:
    events = [_event(i, c, t, GOOD[t]) for i, (c, t) in enumerate(good)]
    at = where % (len(events) + 1)
    poison = _event(1000, who, *bad)
    clean, clean_store, _ = await _run(events)
    mixed, mixed_store, stats = await _run([*events[:at], poison, *events[at:]])

    assert [r.value for r in mixed.records if r.topic == "d"] == \
        [r.value for r in clean.records if r.topic == "d"]
    dead = [orjson.loads(r.value) for r in mixed.records if r.topic == "dl"]
    assert len(dead) == 1 and mixed.dead_letters == 1
    assert dead[0]["code"] == "processing_error"
    assert dead[0]["reason"].startswith("processing_error: ")
    assert dead[0]["error_type"] in {"TypeError", "OverflowError", "ValueError"}
    assert dead[0]["source"]["offset"] == at
    assert stats.dead_letters["processing_error"] == 1
    # the poisoned customer's state is as if the bad event never came
    assert await _states(mixed_store) == await _states(clean_store)


async def test_dead_letter_carries_the_original_bytes_in_batch_order() -> None:
    events = [_event(0, "c-0", "order_shipped", GOOD["order_shipped"]),
              _event(1, "c-1", BAD_TYPE, BAD_DATA),
              _event(2, "c-1", "order_shipped", GOOD["order_shipped"])]
    records = [_record(i, e) for i, e in enumerate(events)]
    proc = BatchProcessor(_store(), WorkerStats(), decisions_topic="d",
                          dead_letter_topic="dl", worker_id="t")
    out = await proc.process(PACK, records)
    topics = [r.topic for r in out.records]
    # c-0's decisions, then the dead letter, then c-1's next event's decisions
    assert topics.index("dl") > 0 and topics.index("dl") < len(topics) - 1
    dl = next(orjson.loads(r.value) for r in out.records if r.topic == "dl")
    assert base64.b64decode(dl["value_b64"]) == records[1].value
    assert dl["source"] == {"topic": "events", "partition": 0, "offset": 1,
                            "timestamp_ms": 1001, "key": "c-1"}
    assert dict(next(r for r in out.records if r.topic == "dl").headers)[
        "tact-reason-code"] == b"processing_error"


async def test_an_uncommitted_batch_split_around_a_dead_letter_runs_again_the_same() -> None:
    """The store only takes a batch once it committed: a batch run in parts whose
    transaction never committed (the worker died) is run again from the same states and
    gives the same decisions and changelog records, with the same ids."""
    events = [_event(i, CUSTOMERS[i % 3], "order_shipped", GOOD["order_shipped"])
              for i in range(6)]
    events.insert(3, _event(99, "c-0", BAD_TYPE, BAD_DATA))
    records = [_record(i, e) for i, e in enumerate(events)]
    store = _store()
    before = await _states(store)
    first = await BatchProcessor(store, WorkerStats(), decisions_topic="d",
                                 dead_letter_topic="dl", state_topic="s").process(PACK, records)
    assert await _states(store) == before  # nothing written before the commit
    proc = BatchProcessor(store, WorkerStats(), decisions_topic="d", dead_letter_topic="dl",
                          state_topic="s")
    again = await proc.process(PACK, records)
    assert [(r.topic, r.key, r.value, r.partition) for r in again.records] == \
        [(r.topic, r.key, r.value, r.partition) for r in first.records]
    # the parts after the dead letter saw the earlier parts' states: one changelog record
    # per customer per part, the last one is the customer's state after the batch
    last = {r.key: r.value for r in again.records if r.topic == "s"}
    await proc.apply(again, {})
    stored = await store.load(CUSTOMERS)
    assert {c.encode(): pack_stored(st, st.version) for c, st in stored.items()
            if c.encode() in last} == last


class _DownStore(MemoryStateStore):
    async def read(self, customers: Any, **kw: Any) -> Any:
        raise StateStoreError("redis: connection refused")


async def test_an_unreachable_store_is_not_a_record_fault() -> None:
    proc = BatchProcessor(_DownStore(), WorkerStats(), decisions_topic="d",
                          dead_letter_topic="dl")
    with pytest.raises(StateStoreError):
        await proc.process(PACK, [_record(0, _event(0, "c-0", "app_open", {}))])


def test_core_reports_a_failed_event_and_decides_the_others() -> None:
    # an event that raises inside the core (its time is unusable: the model's validation
    # was bypassed); real inputs, no patched core: a compiled core cannot be patched
    events = [_event(i, "c-0", "order_shipped", GOOD["order_shipped"]) for i in range(3)]
    envelopes = [Envelope(e, e.at.timestamp()) for e in events]
    broken = Event.model_construct(**{**dict(events[1]), "at": None})
    envelopes[1] = Envelope(broken, envelopes[1].received)
    states = {"c-0": CustomerState("c-0", consent={"push": True, "email": True})}
    res = decide(PACK, states, envelopes)
    assert [o.status for o in res.outcomes] == ["processed", "failed", "processed"]
    assert isinstance(res.outcomes[1].error, AttributeError) and not res.outcomes[1].decisions
    assert {d.event_id for d in res.decisions} == {"ev-0", "ev-2"}
    assert [f.rule for f in res.faults] == ["processing"]


def test_a_follow_up_that_raises_fires_nothing() -> None:
    # the due one's frozen trigger event holds a time that is no number (a damaged state)
    due = AT.timestamp()
    state = CustomerState("c-0", consent={"push": True}, followups=[
        PendingFollowup("cart_reminder", due, {"id": "ev-0", "customer": "c-0",
                                               "type": "cart_updated", "at": "yesterday",
                                               "received": due, "data": GOOD["cart_updated"]}),
        PendingFollowup("cart_reminder", due + 3600, {"id": "ev-1", "at": due})])
    res = tick(PACK, {"c-0": state}, due + 60)
    assert res.fired == [] and [f.rule for f in res.faults] == ["followup"]
    assert res.faults[0].error.startswith("ValueError")
    assert [f.due for f in state.followups] == [due + 3600]  # the due one is dropped
    assert "c-0" in res.changed
