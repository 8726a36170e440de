"""The state store interface: one read and one write per batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from engine.models.state import CustomerState


class StateStore(ABC):
    """Loads and saves the states of a whole batch at once.

    ``load`` returns a state for every id asked (a fresh one for a new customer); a store
    that finds a stored state it cannot decode raises
    :class:`~engine.errors.StateCorruptError` instead (``BatchStore.read_batch`` returns
    such customers apart, in ``BatchRead.quarantined``).
    ``save`` writes the given states; a store with optimistic concurrency raises
    :class:`~engine.errors.StateConflictError` when another writer got there first,
    and bumps ``version`` on what it wrote.
    """

    @abstractmethod
    async def load(self, customers: Collection[str]) -> dict[str, CustomerState]: ...

    @abstractmethod
    async def save(self, states: Mapping[str, CustomerState]) -> None: ...

    @abstractmethod
    async def due_customers(self, now: float, limit: int = 1000) -> list[str]:
        """Customers with a follow-up due by ``now`` (event-time seconds)."""

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        """How many customers of these partitions have a follow-up pending (due or not).

        The default knows of none: a store without a follow-up index answers 0.
        """
        return 0

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Release connections."""


@dataclass(slots=True)
class BatchRead:
    """What :meth:`BatchStore.read_batch` brings back in its one round trip."""

    states: dict[str, CustomerState]
    values: list[bytes | None] = field(default_factory=list)  # of the other keys asked
    due: list[list[str]] = field(default_factory=list)  # per (partition, now, limit) asked
    #: customers whose stored state does not decode -> short reason ("state_corrupt: ...");
    #: they are not in ``states``, and their stored value stays as it is (never overwritten)
    quarantined: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class BatchStore(Protocol):
    """A store that folds other keys of its server into its one read and one write.

    The worker uses it to carry its outbox with the states (``docs/worker.md``): one read
    (states, outbox, due follow-ups) and one atomic write (outbox, then every partition's
    checked state save) per batch.
    """

    async def read_batch(
        self,
        customers: Collection[str],
        *,
        keys: Sequence[str] = (),
        due: Sequence[tuple[int, float, int]] = (),
    ) -> BatchRead: ...

    async def save_batch(
        self,
        by_partition: Mapping[int, Mapping[str, CustomerState]],
        writes: Sequence[tuple[str, bytes | None]] = (),
    ) -> None: ...

    def shares_server(self, client: object) -> bool: ...
