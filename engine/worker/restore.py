"""Bringing the state store up to the changelog: catch up from its mark, or rebuild.

The changelog topic (``tact.state``, compacted, co-partitioned with the events) holds every
committed customer state; the store holds a copy and, per partition, the *mark*: the
changelog position its states reflect. The batch processor asks :meth:`Restorer.bring_up`
with the marks it read before it decides anything:

* the mark is the one this worker last wrote: nothing to do (the common case; no Kafka
  request);
* this worker has not checked the partition since it was assigned (or its last write
  failed or was refused): the changelog's end is asked, and the store is caught up from
  its mark to the end;
* the store has no mark, or one past the changelog's end: the store lost the partition
  (a flushed or replaced Redis): it is rebuilt from the changelog's start;
* the store's mark is ahead of this worker's: another worker wrote there since, so this
  one no longer owns the partition: the batch is failed and retried after the rebalance.

Progress is logged every ``PROGRESS_EVERY`` states and counted in the stats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from engine.errors import StateStoreError
from engine.state.base import PartitionWrite, StateStore
from engine.worker.stats import WorkerStats

log = logging.getLogger("tact.worker.restore")

PROGRESS_EVERY = 100_000

#: changelog records of a partition: (customer, stored value or None, written at, epoch s)
Chunk = list[tuple[str, bytes | None, float]]


class Changelog(Protocol):
    """Reads the changelog topic (read_committed)."""

    async def end(self, partition: int) -> int:
        """The position after the last committed record of ``partition``."""

    def read(self, partition: int, start: int, end: int) -> AsyncIterator[tuple[Chunk, int]]:
        """The records from ``start`` up to ``end``, in chunks, each with the position
        after it."""


@dataclass(slots=True)
class Restored:
    partition: int
    fresh: bool
    states: int
    mark: int
    seconds: float


class Restorer:
    def __init__(self, store: StateStore, changelog: Changelog,
                 stats: WorkerStats | None = None) -> None:
        self.store = store
        self.changelog = changelog
        self.stats = stats
        self.expected: dict[int, int] = {}  # partition -> the mark this worker last wrote

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.expected.pop(p, None)

    def written(self, writes: Mapping[int, PartitionWrite], refused: set[int]) -> None:
        """After a committed batch's write: what the store now holds (or may not)."""
        for p, w in writes.items():
            if p in refused or w.mark is None:
                self.expected.pop(p, None)
            else:
                self.expected[p] = w.mark

    async def bring_up(self, marks: Mapping[int, int | None]) -> bool:
        """Catch up or rebuild every partition whose mark is not the expected one; True if
        any state was restored (the caller reads again)."""
        restored = False
        for p, mark in marks.items():
            want = self.expected.get(p)
            if want is not None and mark == want:
                continue
            if want is not None and mark is not None and mark > want:
                self.expected.pop(p, None)
                raise StateStoreError(
                    f"partition {p}: the store holds changelog position {mark}, past this "
                    f"worker's {want}: another worker owns the partition now")
            done = await self.restore(p, mark)
            restored = restored or done.states > 0 or done.fresh
        return restored

    async def restore(self, partition: int, mark: int | None = None, *,
                      fresh: bool = False) -> Restored:
        """Bring ``partition`` up to the changelog's end from ``mark`` (None or ``fresh``:
        rebuild it from the start)."""
        t0 = time.perf_counter()
        end = await self.changelog.end(partition)
        fresh = fresh or mark is None or mark > end
        start = 0 if fresh else int(mark or 0)
        if not fresh and start >= end:
            self.expected[partition] = start
            return Restored(partition, False, 0, start, 0.0)
        if fresh:
            log.warning("partition %d: rebuilding the state store from the changelog "
                        "(%s)", partition, "no mark: the store lost its data"
                        if mark is None else f"mark {mark} past the changelog's end {end}")
        total, first, position = 0, True, start
        async for chunk, position in self.changelog.read(partition, start, end):
            total += await self.store.restore(partition, chunk, position, fresh=fresh and first)
            first = False
            if total // PROGRESS_EVERY != (total - len(chunk)) // PROGRESS_EVERY:
                log.info("partition %d: %d states restored (changelog %d of %d)", partition,
                         total, position, end)
        if first or position < end:  # no record (only transaction markers) up to the end
            await self.store.restore(partition, [], end, fresh=fresh and first)
        seconds = time.perf_counter() - t0
        self.expected[partition] = end
        if self.stats is not None:
            self.stats.restores["rebuild" if fresh else "catch_up"] += 1
            self.stats.restored_states += total
        if fresh or total:
            log.info("partition %d: %s, %d states in %.2f s (changelog %d to %d)", partition,
                     "rebuilt" if fresh else "caught up", total, seconds, start, end)
        return Restored(partition, fresh, total, end, seconds)
