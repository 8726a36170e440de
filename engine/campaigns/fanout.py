"""The fan-out of a campaign run: one ``campaign`` event per known customer, throttled,
checkpointed page by page, resumable.

It walks each partition's customers a page at a time (Redis: SCAN of the partition's state
keys; embedded: the memory store), sends the page's events and waits until they are
durable, then saves the partition's cursor. A crash loses at most the page in flight,
which is sent again on resume: the worker decides a run's event for a customer only once
(``engine.pipeline.campaign``), so a page sent twice decides nothing twice. Starting a run
that is done, or running, resumes it from its checkpoint; the run id names it.

The audience is not evaluated here: the worker evaluates it on the customer's committed
state, in the same transaction as the decision, so a customer's concurrent events and the
campaign never race.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson

from engine.campaigns.schedule import CAMPAIGN_EVENT, campaign_event_id, run_id
from engine.errors import CampaignError
from engine.models.event import Event
from engine.pack.model import CampaignDef

__all__ = ["DONE", "Checkpoints", "CustomerPages", "EventSink", "FanOut", "Progress", "RunPage",
           "campaign_event"]

DONE = -1  # a partition's cursor once it has been walked to the end
MAX_PAGE = 5000  # customers per page at most: one send, one wait for acks, one checkpoint


@dataclass(slots=True)
class Progress:
    """A run's checkpoint: where each partition's walk is, and the counts so far."""

    run: str
    campaign: str
    scheduled: float
    started: float
    cursors: dict[int, int] = field(default_factory=dict)  # partition -> next cursor, DONE
    scanned: int = 0  # customers found
    emitted: int = 0  # events sent (a page sent again after a crash counts again)
    finished: float | None = None

    @property
    def state(self) -> str:
        return "done" if self.finished is not None else "running"

    def partitions_done(self) -> int:
        return sum(1 for c in self.cursors.values() if c == DONE)


class CustomerPages(Protocol):
    """Where the known customers are: a cursor walk per partition (0 starts and ends it)."""

    async def page(self, partition: int, cursor: int, count: int) -> tuple[int, list[str]]:
        """(next cursor, 0 when the walk is over; the customers of this page)."""


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run: its customers of one partition, each to get the run's event."""

    campaign: str
    run: str
    at: float
    partition: int
    customers: Sequence[str]

    def events(self) -> list[Event]:
        return [campaign_event(self.campaign, self.run, c, self.at) for c in self.customers]

    def records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) of each event as the events topic takes it: the JSON
        :class:`Event` gives, written without a model per customer (a million per run)."""
        at = datetime.fromtimestamp(self.at, UTC).isoformat()
        head = {"type": CAMPAIGN_EVENT, "at": at,
                "data": {"campaign": self.campaign, "run": self.run}}
        return [(c.encode(), orjson.dumps({"id": campaign_event_id(self.run, c),
                                           "customer": c, **head}))
                for c in self.customers]


class EventSink(Protocol):
    async def send(self, page: RunPage) -> None:
        """Send the page's events; return once they are durable (raise when not)."""


class Checkpoints(Protocol):
    async def load(self, run: str) -> Progress | None: ...

    async def save(self, progress: Progress) -> None: ...


def campaign_event(campaign: str, run: str, customer: str, at: float) -> Event:
    """The one event of ``run`` for ``customer``, dated ``at``."""
    return Event(id=campaign_event_id(run, customer), customer=customer, type=CAMPAIGN_EVENT,
                 at=datetime.fromtimestamp(at, UTC), data={"campaign": campaign, "run": run})


@dataclass(slots=True)
class FanOut:
    """Runs a campaign's runs over ``partitions`` of ``pages`` into ``sink``.

    ``clock`` is the wall clock (events are dated when sent, never before the scheduled
    time); ``sleep`` waits (both injectable for tests). ``on_page`` is called with the
    progress after each checkpoint (metrics, a test's crash).
    """

    pages: CustomerPages
    sink: EventSink
    checkpoints: Checkpoints
    partitions: Sequence[int]
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_page: Callable[[Progress], Awaitable[None]] | None = None

    async def run(self, campaign: CampaignDef, scheduled: float) -> Progress:
        """Run (or resume) the run of ``campaign`` scheduled at ``scheduled``."""
        if not campaign.enabled:
            raise CampaignError(f"campaign {campaign.id!r} is disabled (enabled: false)")
        run = run_id(campaign.id, scheduled)
        progress = await self.checkpoints.load(run)
        if progress is None:
            progress = Progress(run, campaign.id, scheduled, self.clock())
            await self.checkpoints.save(progress)
        if progress.finished is not None:
            return progress
        throttle = _Throttle(campaign.rate, self.clock, self.sleep)
        page_size = int(min(MAX_PAGE, max(10.0, campaign.rate / 4)))
        for partition in self.partitions:
            cursor = progress.cursors.get(partition, 0)
            while cursor != DONE:
                cursor = await self._page(campaign, progress, partition, cursor, page_size,
                                          throttle)
        progress.finished = self.clock()
        await self.checkpoints.save(progress)
        return progress

    async def _page(self, campaign: CampaignDef, progress: Progress, partition: int,
                    cursor: int, page_size: int, throttle: _Throttle) -> int:
        # a page is at least ``page_size`` customers (or the rest of the partition): SCAN's
        # COUNT is a hint over the whole keyspace, so one call may find few of this partition
        found: list[str] = []
        nxt = cursor
        while True:
            nxt, customers = await self.pages.page(partition, nxt, page_size)
            found.extend(customers)
            if nxt == 0 or len(found) >= page_size:
                break
        unique = list(dict.fromkeys(found))  # SCAN may return a key twice
        if unique:
            await throttle.take(len(unique))
            at = max(self.clock(), progress.scheduled)
            await self.sink.send(RunPage(campaign.id, progress.run, at, partition, unique))
        progress.scanned += len(unique)
        progress.emitted += len(unique)
        progress.cursors[partition] = DONE if nxt == 0 else nxt
        await self.checkpoints.save(progress)
        if self.on_page is not None:
            await self.on_page(progress)
        return progress.cursors[partition]


class _Throttle:
    """At most ``rate`` customers a second on average, from the first page on."""

    __slots__ = ("clock", "rate", "sent", "sleep", "start")

    def __init__(self, rate: float, clock: Callable[[], float],
                 sleep: Callable[[float], Awaitable[None]]) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start: float | None = None
        self.sent = 0

    async def take(self, n: int) -> None:
        now = self.clock()
        if self.start is None:
            self.start = now
        due = self.start + self.sent / self.rate  # when this page may go at the rate
        if due > now:
            await self.sleep(due - now)
        self.sent += n
