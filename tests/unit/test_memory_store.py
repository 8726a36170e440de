"""The memory store follows the Redis store's rules (embedded mode runs on it): the same
stored bytes, partitions and marks explicit, a write applied per partition or refused whole,
due follow-ups queried and never popped, rebuilds from changelog records."""

from __future__ import annotations

import pytest

from engine.errors import StateStoreError
from engine.models.state import CustomerState, PendingFollowup
from engine.state.base import PartitionWrite
from engine.state.memory import MemoryStateStore
from engine.state.wire import pack_stored, unpack_stored
from tests.unit.test_state_wire import _assert_same, _full_state


def _enc(st: CustomerState) -> tuple[CustomerState, bytes]:
    return st, pack_stored(st, st.version)


async def test_round_trip_of_the_stored_bytes() -> None:
    store = MemoryStateStore()
    assert (await store.read({"c-1": 2})).states == {"c-1": CustomerState("c-1")}
    full = _full_state(version=4)
    assert await store.write({2: PartitionWrite(dict([("c-1", _enc(full))]))}) == set()
    again = (await store.read({"c-1": 2})).states["c-1"]
    _assert_same(again, full)
    assert (await store.read({"c-1": 0})).states["c-1"] == CustomerState("c-1")  # other part


async def test_marks_refuse_a_lost_or_overtaken_partition_whole() -> None:
    store = MemoryStateStore()
    a, b = CustomerState("a"), CustomerState("b")
    # no mark yet: the store cannot tell it holds the changelog's states
    assert await store.write({0: PartitionWrite({"a": _enc(a)}, mark=5)}) == {0}
    assert (await store.read({}, marks=[0])).marks == {0: None}
    await store.restore(0, [], 5, fresh=True)
    assert await store.write({0: PartitionWrite({"a": _enc(a)}, mark=9),
                              1: PartitionWrite({"b": _enc(b)}, mark=3)}) == {1}
    assert (await store.read({}, marks=[0, 1])).marks == {0: 9, 1: None}
    a.attributes["x"] = 1
    assert await store.write({0: PartitionWrite({"a": _enc(a)}, mark=7)}) == {0}  # overtaken
    assert (await store.read({"a": 0})).states["a"].attributes == {}


async def test_due_follow_ups_are_queried_not_popped() -> None:
    store = MemoryStateStore()
    st = CustomerState("c", followups=[PendingFollowup("r", 100.0, {})])
    await store.write({3: PartitionWrite({"c": _enc(st)})})
    assert await store.due_customers(99.0, partition=3) == []
    assert await store.due_customers(100.0, partition=3) == ["c"]
    assert await store.due_customers(100.0, partition=3) == ["c"]  # still there
    assert await store.due_customers(100.0, partition=0) == []
    assert await store.pending_followups([3]) == 1
    assert await store.pending_followups([0, 1]) == 0
    st.followups = []
    await store.write({3: PartitionWrite({"c": _enc(st)})})
    assert await store.pending_followups([3]) == 0


async def test_restore_rebuilds_or_catches_up_from_changelog_records() -> None:
    store = MemoryStateStore()
    stale = CustomerState("gone", consent={"push": True})
    await store.write({0: PartitionWrite({"gone": _enc(stale)})})
    kept = CustomerState("kept", consent={"email": True},
                         followups=[PendingFollowup("r", 50.0, {})])
    assert await store.restore(0, [("kept", pack_stored(kept, 3), 0.0)], 10, fresh=True) == 1
    got = await store.read({"kept": 0, "gone": 0}, due=[(0, 60.0, 10)], marks=[0])
    assert got.states["kept"].consent == {"email": True} and got.states["kept"].version == 3
    assert got.states["gone"] == CustomerState("gone")  # a rebuild drops what it lacks
    assert got.due == [["kept"]] and got.marks == {0: 10}
    # catching up applies on top; a tombstone deletes
    await store.restore(0, [("kept", None, 0.0)], 12, fresh=False)
    got = await store.read({"kept": 0}, marks=[0])
    assert got.states["kept"] == CustomerState("kept") and got.marks == {0: 12}
    assert unpack_stored(pack_stored(kept, 3)).version == 3


async def test_catching_up_is_refused_without_a_mark_or_behind_it() -> None:
    store = MemoryStateStore()
    record = ("a", pack_stored(CustomerState("a", counters={"n": 1}), 1), 0.0)
    with pytest.raises(StateStoreError, match="restore refused"):  # the partition was lost
        await store.restore(0, [record], 5, fresh=False)
    assert (await store.read({}, marks=[0])).marks == {0: None} and len(store) == 0
    await store.restore(0, [], 8, fresh=True)
    with pytest.raises(StateStoreError, match="restore refused"):  # a newer writer was here
        await store.restore(0, [record], 6, fresh=False)
    assert (await store.read({}, marks=[0])).marks == {0: 8} and len(store) == 0
    assert await store.restore(0, [record, ("a", None, 0.0)], 9, fresh=False) == 2
