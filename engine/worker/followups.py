"""Follow-ups: the wall-clock timer that makes pending follow-ups fire.

Pending follow-ups live in the customers' states, indexed in Redis by a sorted set per
partition (due time -> customer; :mod:`engine.state.redis.keys`). They survive a
restart with the state. The timer (a Faust timer, every ``followup_interval_s``) does not
fire them itself: for each partition this worker owns that has something due by
``time.time()``, it appends a *tick* record ``{"v": 1, "now": <epoch s>}`` to the same
partition of the ticks topic (``<events topic>.ticks``, co-partitioned with the events).
The batch consumer reads ticks like events and fires the due follow-ups inside the batch
transaction, so a fired follow-up gets the same exactly-once treatment as a decision on an
event: decisions, changed states and offsets committed together.

An unless-event cancels a follow-up when it is processed (:func:`engine.pipeline.decide`);
events are processed before the ticks of the same batch, so an event already fetched wins
over a tick of the same batch. A tick that finds nothing due (a duplicate tick, a follow-up
cancelled meanwhile) is a no-op. Tests and replays drive the clock by appending their own
ticks (:func:`tick_records`), with the wall-clock timer turned off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from engine.state.base import StateStore
from engine.worker.codec import encode_tick

log = logging.getLogger("tact.worker.followups")

TICKS_SUFFIX = ".ticks"
OUTSTANDING_S = 30.0  # a tick not consumed after this long is sent again

Send = Callable[[str, bytes, int], Awaitable[None]]  # (topic, value, partition)


def ticks_topic(events_topic: str) -> str:
    return events_topic + TICKS_SUFFIX


def tick_records(now: float, partitions: Iterable[int],
                 origin: str = "control") -> list[tuple[int, bytes]]:
    """(partition, value) of the tick records that move these partitions' clock to ``now``."""
    value = encode_tick(now, origin)
    return [(p, value) for p in partitions]


class FollowupTimer:
    """Decides which owned partitions need a tick, and sends it."""

    def __init__(self, store: StateStore, topic: str, send: Send,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.topic = topic
        self.send = send
        self.clock = clock
        self.owned: set[int] = set()
        self._outstanding: dict[int, float] = {}  # partition -> wall time a tick was sent

    def assigned(self, partitions: Iterable[int]) -> None:
        self.owned = set(partitions)
        for p in list(self._outstanding):
            if p not in self.owned:
                del self._outstanding[p]

    def consumed(self, partition: int) -> None:
        """The batch consumer read a tick of this partition: the next one may be sent."""
        self._outstanding.pop(partition, None)

    async def _anything_due(self, now: float, partition: int) -> bool:
        """Something due in the store's index, or no index to ask: the store has no mark for
        the partition (it lost its data, or nothing was written yet), so its follow-ups are
        only in the changelog; a tick makes the worker rebuild it, then fire them."""
        got = await self.store.read({}, due=[(partition, now, 1)], marks=[partition])
        return bool(got.due[0]) or got.marks.get(partition) is None

    async def run_once(self) -> list[int]:
        """Send a tick to each owned partition with a follow-up due; returns those partitions."""
        now = self.clock()
        sent: list[int] = []
        for p in sorted(self.owned):
            since = self._outstanding.get(p)
            if since is not None and now - since < OUTSTANDING_S:
                continue
            if not await self._anything_due(now, p):
                continue
            await self.send(self.topic, encode_tick(now, "timer"), p)
            self._outstanding[p] = now
            sent.append(p)
        if sent:
            log.debug("follow-up ticks at %.3f sent to partitions %s", now, sent)
        return sent
