"""The fan-out's parts for embedded mode: the memory store's customers, checkpoints in a
dict, and a sink that decides each page at once (``Engine.run_campaign``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from engine.campaigns.fanout import Progress, RunPage
from engine.models.event import Envelope
from engine.state.memory import MemoryStateStore

__all__ = ["DecidingSink", "MemoryCheckpoints", "MemoryPages"]


@dataclass(slots=True)
class MemoryPages:
    """The memory store's customers of a partition; the cursor is a position in them
    (taken at the first page, so customers the run itself adds are not walked)."""

    store: MemoryStateStore
    _walks: dict[int, list[str]] = field(default_factory=dict)

    async def page(self, partition: int, cursor: int, count: int) -> tuple[int, list[str]]:
        walk = self._walks.get(partition)
        if walk is None or cursor == 0:
            walk = self._walks[partition] = self.store.customers(partition)
        end = cursor + count
        return (end if end < len(walk) else 0), walk[cursor:end]


@dataclass(slots=True)
class MemoryCheckpoints:
    runs: dict[str, Progress] = field(default_factory=dict)

    async def load(self, run: str) -> Progress | None:
        found = self.runs.get(run)
        return None if found is None else replace(found, cursors=dict(found.cursors))

    async def save(self, progress: Progress) -> None:
        self.runs[progress.run] = replace(progress, cursors=dict(progress.cursors))


@dataclass(slots=True)
class DecidingSink:
    """Decides each page as it is sent, at the events' own time (embedded: no Kafka)."""

    decide: Callable[[Sequence[Envelope]], Awaitable[object]]

    async def send(self, page: RunPage) -> None:
        await self.decide([Envelope.at_event_time(e) for e in page.events()])
