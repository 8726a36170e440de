"""In-memory state store: embedded mode for rule authoring, simulation and unit tests.

It follows the Redis store's rules: values are kept encoded (the same bytes), partitions
and marks are explicit, a write is applied per partition or refused whole, and the due
follow-ups are queried, never popped. Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from engine.errors import StateDecodeError, StateStoreError
from engine.models.state import CustomerState
from engine.state.base import BatchRead, PartitionWrite, StateStore
from engine.state.wire import pack_stored, unpack_stored


class _Partition:
    __slots__ = ("due", "mark", "values")

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.due: dict[str, float] = {}
        self.mark: int | None = None


class MemoryStateStore(StateStore):
    def __init__(self) -> None:
        self._parts: dict[int, _Partition] = {}
        self.reads = 0
        self.writes = 0

    def _part(self, partition: int) -> _Partition:
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        return part

    async def read(self, customers: Mapping[str, int], *,
                   due: Sequence[tuple[int, float, int]] = (),
                   marks: Collection[int] = ()) -> BatchRead:
        self.reads += 1
        states: dict[str, CustomerState] = {}
        quarantined: dict[str, str] = {}
        for c, p in customers.items():
            raw = self._part(p).values.get(c)
            if raw is None:
                states[c] = CustomerState(c)
                continue
            try:
                states[c] = unpack_stored(raw)
            except StateDecodeError as exc:  # only a test puts such bytes here
                quarantined[c] = f"state_corrupt: {exc.reason}"
        found = []
        for p, now, limit in due:
            index = self._part(p).due
            hits = sorted((at, c) for c, at in index.items() if at <= now)
            found.append([c for _, c in hits[: max(limit, 0)]])
        return BatchRead(states, found, quarantined, {p: self._part(p).mark for p in marks})

    async def write(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        self.writes += 1
        refused: set[int] = set()
        for p, w in writes.items():
            part = self._part(p)
            if w.mark is not None and (part.mark is None or part.mark > w.mark):
                refused.add(p)
                continue
            for c, (st, value) in w.states.items():
                part.values[c] = value
                self._index(part, c, st.next_due())
            if w.mark is not None:
                part.mark = w.mark
        return refused

    async def restore(self, partition: int, records: Iterable[tuple[str, bytes | None, float]],
                      mark: int, *, fresh: bool) -> int:
        part = self._part(partition)
        if fresh:
            part.values.clear()
            part.due.clear()
        elif part.mark is None or part.mark > mark:
            raise StateStoreError(f"partition {partition}: restore refused, the store's mark "
                                  f"is {part.mark}, not at most {mark}")
        n = 0
        for c, value, _at in records:
            n += 1
            if value is None:
                part.values.pop(c, None)
                part.due.pop(c, None)
                continue
            part.values[c] = value
            try:
                self._index(part, c, unpack_stored(value).next_due())
            except StateDecodeError:
                part.due.pop(c, None)
        part.mark = mark
        return n

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        return sum(len(self._part(p).due) for p in set(partitions))

    def seed(self, state: CustomerState, partition: int = 0) -> None:
        """Put a customer's starting state (profile import, scenario set-up)."""
        part = self._part(partition)
        part.values[state.customer] = pack_stored(state, state.version)
        self._index(part, state.customer, state.next_due())

    def customers(self, partition: int = 0) -> list[str]:
        """The partition's known customers, in order (a campaign's walk)."""
        return sorted(self._part(partition).values)

    def partitions(self) -> list[int]:
        return sorted(self._parts)

    def put_raw(self, customer: str, value: bytes, partition: int = 0) -> None:
        """Store bytes as they are (tests of undecodable states)."""
        self._part(partition).values[customer] = value

    @staticmethod
    def _index(part: _Partition, customer: str, due: float | None) -> None:
        if due is None:
            part.due.pop(customer, None)
        else:
            part.due[customer] = due

    def __len__(self) -> int:
        return sum(len(p.values) for p in self._parts.values())
