"""The state store interface: what one batch reads and what a committed batch writes.

Partitions are explicit: a customer lives in the Kafka partition its events are keyed to,
and everything a store keeps for one partition (states, the follow-up index, the changelog
mark) is written together, atomically. Kafka's compacted changelog topic holds the truth;
a store is a fast copy that the worker catches up or rebuilds from it (``docs/worker.md``).

Per batch: one :meth:`StateStore.read` (the batch's customers, due follow-ups, the marks of
its partitions), then, once the batch's Kafka transaction committed, one
:meth:`StateStore.write` of the changed states with each partition's new mark.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.models.state import CustomerState

#: A customer's state on its way to the store: the state, and its encoded wire form.
Encoded = tuple[CustomerState, bytes]


@dataclass(slots=True)
class BatchRead:
    """What :meth:`StateStore.read` brings back."""

    states: dict[str, CustomerState]
    due: list[list[str]] = field(default_factory=list)  # per (partition, now, limit) asked
    #: customers whose stored state does not decode: never decided, never written over
    quarantined: dict[str, str] = field(default_factory=dict)
    #: per partition asked: the changelog position its stored states reflect (None: the
    #: store holds no mark, so it lost that partition's data or never had it)
    marks: dict[int, int | None] = field(default_factory=dict)


@dataclass(slots=True)
class PartitionWrite:
    """A committed batch's states of one partition, and the changelog position after them.

    ``states`` maps a customer to its state and that state's encoded blob
    (:func:`engine.state.codec.encode_blob`), encoded once for the changelog and the store.
    ``mark`` None writes without a changelog (embedded mode).
    """

    states: dict[str, Encoded]
    mark: int | None = None


class WriteRefused(Exception):
    """Raised by nothing; see :meth:`StateStore.write`'s return value."""


class StateStore(ABC):
    """A partitioned customer-state store (memory, Redis, Redis Cluster)."""

    @abstractmethod
    async def read(
        self,
        customers: Mapping[str, int],
        *,
        due: Sequence[tuple[int, float, int]] = (),
        marks: Collection[int] = (),
    ) -> BatchRead:
        """The states of ``customers`` (customer -> partition; a fresh state for one never
        seen), per ``(partition, now, limit)`` of ``due`` the customers with a follow-up due
        by ``now`` (earliest first, at most ``limit``; nothing is removed), and the marks of
        ``marks``' partitions."""

    @abstractmethod
    async def write(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        """Apply each partition's states, and its mark, atomically per partition.

        Returns the partitions refused: their stored mark is missing while ``mark`` is set
        (the store lost the partition: rebuild it) or ahead of ``mark`` (a newer writer).
        A refused partition is left as it was.
        """

    @abstractmethod
    async def restore(self, partition: int, records: Iterable[tuple[str, bytes | None, float]],
                      mark: int, *, fresh: bool) -> int:
        """Apply changelog records ``(customer, blob or None to delete, written at)`` of a
        partition and set its mark, atomically. ``fresh`` first deletes everything the store
        holds for the partition (a full rebuild). Returns the records applied (deletions
        included).

        Unless ``fresh``, it is refused as :meth:`write` is (mark missing or ahead): that
        raises :class:`~engine.errors.StateStoreError`, nothing applied, since the states
        the caller read are then not the ones it was catching up."""

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        """How many customers of these partitions have a follow-up pending (due or not)."""
        return 0

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Release connections."""

    # -- conveniences over read/write (tools, tests, embedded mode) ------------------------
    async def load(self, customers: Collection[str], partition: int = 0
                   ) -> dict[str, CustomerState]:
        """The states of ``customers``, all taken to live in ``partition``."""
        return (await self.read(dict.fromkeys(customers, partition))).states

    async def due_customers(self, now: float, limit: int = 1000, partition: int = 0
                            ) -> list[str]:
        """Customers of ``partition`` with a follow-up due by ``now`` (nothing removed)."""
        return (await self.read({}, due=[(partition, now, limit)])).due[0]
