"""In-memory state store: embedded mode for rule authoring, simulation and unit tests.

States are kept msgpack-encoded, exactly as the Redis store keeps them, so embedded runs
exercise the same wire form and callers never share mutable state with the store.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping

import msgpack

from engine.errors import StateConflictError
from engine.models.state import CustomerState
from engine.state.base import StateStore


class MemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._versions: dict[str, int] = {}
        self._due: list[tuple[float, str]] = []  # heap; stale entries are skipped on read
        self._next_due: dict[str, float] = {}
        self.reads = 0
        self.writes = 0

    async def load(self, customers: Collection[str]) -> dict[str, CustomerState]:
        self.reads += 1
        out: dict[str, CustomerState] = {}
        for c in customers:
            raw = self._data.get(c)
            out[c] = (
                CustomerState.from_wire(msgpack.unpackb(raw, strict_map_key=False))
                if raw is not None
                else CustomerState(c)
            )
        return out

    async def save(self, states: Mapping[str, CustomerState]) -> None:
        self.writes += 1
        for c, st in states.items():
            if self._versions.get(c, 0) != st.version:
                raise StateConflictError(f"customer {c}: state changed since it was loaded")
        # encode every state before changing anything: a state that cannot be encoded
        # fails the whole save, as the Redis store's one script call does
        blobs = {c: msgpack.packb([*w[:2], st.version + 1, *w[3:]])
                 for c, st in states.items() for w in (st.to_wire(),)}
        for c, st in states.items():
            st.version += 1
            self._versions[c] = st.version
            self._data[c] = blobs[c]
            due = st.next_due()
            if due is None:
                self._next_due.pop(c, None)
            elif self._next_due.get(c) != due:
                self._next_due[c] = due
                heapq.heappush(self._due, (due, c))

    async def due_customers(self, now: float, limit: int = 1000) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        while self._due and self._due[0][0] <= now and len(out) < limit:
            due, c = heapq.heappop(self._due)
            if self._next_due.get(c) == due and c not in seen:
                out.append(c)
                seen.add(c)
        return out

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        """Customers with a follow-up pending. The memory store keeps one index for every
        partition, so any partition asked counts them all (none asked: 0)."""
        return len(self._next_due) if any(True for _ in partitions) else 0

    def seed(self, state: CustomerState) -> None:
        """Put a customer's starting state (profile import, scenario set-up)."""
        self._data[state.customer] = msgpack.packb(state.to_wire())
        self._versions[state.customer] = state.version

    def __len__(self) -> int:
        return len(self._data)
