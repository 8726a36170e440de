"""The follow-up timer ticks a partition with something due, and one whose store lost its
data (no mark): only the changelog knows its follow-ups then, and the tick makes the worker
rebuild the partition and fire them. Otherwise it stays quiet."""

from __future__ import annotations

from engine.models.state import CustomerState, PendingFollowup
from engine.state.base import PartitionWrite
from engine.state.memory import MemoryStateStore
from engine.state.wire import pack_stored
from engine.worker.followups import FollowupTimer


async def test_ticks_what_is_due_and_what_the_store_lost() -> None:
    store = MemoryStateStore()
    sent: list[int] = []

    async def send(topic: str, value: bytes, partition: int) -> None:
        sent.append(partition)

    timer = FollowupTimer(store, "ticks", send, clock=lambda: 1000.0)
    timer.assigned([0, 1, 2])
    st = CustomerState("c", followups=[PendingFollowup("r", 900.0, {})])
    for p in (0, 1, 2):
        await store.restore(p, [], 5, fresh=True)  # every partition checked: a mark
    await store.write({1: PartitionWrite({"c": (st, pack_stored(st, 1))}, mark=6)})
    assert await timer.run_once() == [1]  # due in partition 1 only
    timer.consumed(1)
    lost = MemoryStateStore()  # partitions 0-2 with no mark: the store lost them
    timer.store = lost
    assert await timer.run_once() == [0, 1, 2]  # every partition: their follow-ups are only
    # in the changelog now
    assert await timer.run_once() == []  # one outstanding tick per partition at a time
