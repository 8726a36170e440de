"""``StateStore.pending_followups``: the memory store's count, and the interface's default."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from engine.models.state import CustomerState, PendingFollowup
from engine.state.base import StateStore
from engine.state.memory import MemoryStateStore


async def test_memory_store_counts_customers_with_a_pending_followup() -> None:
    store = MemoryStateStore()
    assert await store.pending_followups([0]) == 0
    states = await store.load(["a", "b", "c"])
    states["a"].followups = [PendingFollowup("r", 10.0, {}), PendingFollowup("r", 20.0, {})]
    states["b"].followups = [PendingFollowup("r", 30.0, {})]
    await store.save(states)
    # one index for every partition: any partition asked counts them all, none asked none
    assert await store.pending_followups([0]) == 2
    assert await store.pending_followups(range(6)) == 2
    assert await store.pending_followups([]) == 0
    states["a"].followups = []
    await store.save({"a": states["a"]})
    assert await store.pending_followups([3]) == 1


class _Bare(StateStore):
    async def load(self, customers: Collection[str]) -> dict[str, CustomerState]:
        return {c: CustomerState(c) for c in customers}

    async def save(self, states: Mapping[str, CustomerState]) -> None:
        return None

    async def due_customers(self, now: float, limit: int = 1000) -> list[str]:
        return []


async def test_default_is_zero() -> None:
    assert await _Bare().pending_followups([0, 1]) == 0
