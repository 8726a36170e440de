"""The state store interface: one read and one write per batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping

from engine.models.state import CustomerState


class StateStore(ABC):
    """Loads and saves the states of a whole batch at once.

    ``load`` returns a state for every id asked (a fresh one for a new customer).
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

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Release connections."""
