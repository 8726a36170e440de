"""One batch through the core: states in, pipeline, the records to produce, states out.

No Kafka here: :class:`BatchProcessor` takes decoded records (events, ticks, dead letters,
each with its source partition and offset) and returns what the caller produces in one
Kafka transaction with the batch's offsets: the decisions, the dead letters and, with a
changelog topic, one changelog record per changed customer (the stored value, keyed by the
customer, in the source partition). The protocol of ``docs/worker.md``:

1. :meth:`BatchProcessor.process`: one store read (the batch's customers, each tick's due
   follow-ups, the partitions' marks). A partition whose mark is not the one this worker
   last wrote is first brought up to the changelog (:mod:`engine.worker.restore`). Then
   :func:`engine.pipeline.decide`, and follow-ups fired for each tick record;
2. (caller) produce, send offsets, commit the transaction;
3. :meth:`BatchProcessor.apply`: write the changed states with each partition's new mark
   (the changelog position after this batch's records). Redis only ever holds committed
   state; if this write fails or is refused, the next batch of that partition catches the
   store up from the changelog before it reads anything.

A crash before 2 leaves nothing behind: the batch is fetched and decided again, with the
same decision ids. A crash between 2 and 3 leaves the store behind the changelog, which the
next owner catches up first. So there is no outbox.

One record's fault is that record's dead letter, never the batch's. The core reports an
event that raised as ``failed``; anything else that raises (encoding a decision or a state,
say) is not pinned to a record. The batch is run again around the record (the records
before it, then the ones after it, the later parts reading the earlier parts' states), by
halving when the record is unknown, and a record that fails alone is dead-lettered with
reason ``processing_error`` and its original bytes. Its customer's state stays as it was
before that event. Infrastructure errors (:class:`StateStoreError`) are not a record's
fault: they propagate and the caller retries the batch after a back-off.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.errors import StateStoreError
from engine.models.event import Envelope
from engine.models.state import CustomerState
from engine.observability.counts import BatchCounts
from engine.pack.model import RulePack
from engine.pipeline import BatchResult, decide, tick
from engine.pipeline.core import RuleFault
from engine.state.base import Encoded, PartitionWrite, StateStore
from engine.state.wire import pack_stored, unpack_stored
from engine.worker.codec import DeadLetter, Source, decision_headers
from engine.worker.records import InRecord, OutRecord, Processed, RecordFailed
from engine.worker.restore import Restorer
from engine.worker.stats import WorkerStats

if TYPE_CHECKING:
    from engine.outcomes.aggregate import ReportWriter

__all__ = [
    "BatchProcessor", "InRecord", "OutRecord", "Processed", "RecordFailed", "gc_paused",
]

log = logging.getLogger("tact.worker")

TICK_LIMIT = 5000  # customers fired per tick record; the rest wait for the next tick
PROCESSING_ERROR = "processing_error"
STATE_CORRUPT = "state_corrupt"


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC while a batch runs; it collects once the batch is done.

    A batch allocates a few hundred thousand objects (states, views, decisions) that all
    stay alive until it ends, so the collections the allocations trigger meanwhile find
    nothing to free: measured ~20% of decide() on the load-test pack. Memory is bounded by
    the batch size (``batch_max_events``); reference counting still frees as usual.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class BatchProcessor:
    """Runs batches for the worker (``restorer`` and ``state_topic`` set) and for embedded
    mode (neither: no changelog, the caller applies each batch at once)."""

    def __init__(self, store: StateStore, stats: WorkerStats, *, decisions_topic: str = "",
                 dead_letter_topic: str = "", state_topic: str | None = None,
                 restorer: Restorer | None = None, worker_id: str = "",
                 trace: bool = False, report: ReportWriter | None = None) -> None:
        self.store = store
        self.report = report
        self.stats = stats
        self.decisions_topic = decisions_topic
        self.dead_letter_topic = dead_letter_topic
        self.state_topic = state_topic
        self.restorer = restorer
        self.worker_id = worker_id
        self.trace = trace
        self._overlay: dict[str, bytes] = {}  # states of earlier parts of a split batch

    # -- ownership ------------------------------------------------------------------------
    def forget(self, partitions: Iterable[int]) -> None:
        """Revoked or newly assigned partitions: check them against the changelog again."""
        if self.restorer is not None:
            self.restorer.forget(partitions)

    # -- the batch ------------------------------------------------------------------------
    async def process(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
        """Decide one batch; a record that cannot be processed is dead-lettered and the rest
        goes on (module docstring). Raises :class:`StateStoreError` (retry the batch)."""
        self._overlay = {}
        try:
            return await self._isolating(pack, records)
        finally:
            self._overlay = {}

    async def apply(self, processed: Processed, marks: dict[int, int]) -> None:
        """Write a committed batch's states; ``marks``: per partition, the changelog position
        after its records. A failed or refused write only makes that partition be caught
        up from the changelog before its next batch (the batch itself is committed)."""
        if self.report is not None:
            await self._report(processed)
        writes = {p: PartitionWrite(states, marks.get(p))
                  for p, states in processed.writes.items()}
        if not writes:
            return
        try:
            refused = await self.store.write(writes)
        except StateStoreError as exc:
            log.warning("writing a committed batch's states failed (%s); the store is caught "
                        "up from the changelog before the next batch", exc)
            self.stats.retries["redis-apply"] += 1
            refused = set(writes)
        if self.restorer is not None:
            self.restorer.written(writes, refused)

    async def _report(self, processed: Processed) -> None:
        """Add the committed batch's outcome totals: at most once (a failure loses them)."""
        if self.report is None:
            return
        try:
            await self.report.add(processed.result)
        except StateStoreError as exc:
            log.warning("adding a committed batch's outcome totals failed (%s); they are "
                        "not in tact report", exc)
            self.stats.retries["redis-report"] += 1

    async def _isolating(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
        try:
            out = await self._run(pack, records)
        except StateStoreError:
            raise
        except RecordFailed as failed:
            at, error = failed.index, failed.error
        except Exception as exc:  # not pinned to a record: halve the batch until it is
            if len(records) == 1:
                at, error = 0, exc
            else:
                mid = len(records) // 2
                first = self._remember(await self._isolating(pack, records[:mid]))
                return Processed.joined([first, await self._isolating(pack, records[mid:])])
        else:
            return out
        parts = [self._remember(await self._isolating(pack, records[:at]))] if at else []
        parts.append(self._failed(records[at], error))
        if at + 1 < len(records):
            parts.append(await self._isolating(pack, records[at + 1:]))
        return Processed.joined(parts)

    def _remember(self, part: Processed) -> Processed:
        """A part of a split batch: the parts after it read its states, not the store's."""
        for states in part.writes.values():
            for c, (_st, value) in states.items():
                self._overlay[c] = value
        return part

    def _failed(self, record: InRecord, error: BaseException) -> Processed:
        """A record that cannot be processed: its dead letter, with the original bytes."""
        kind = type(error).__name__
        log.warning("record %d@%d failed (%s: %.200s): dead-lettered as %s", record.partition,
                    record.offset, kind, error, PROCESSING_ERROR)
        src = record.source or Source("", record.partition, record.offset)
        dl = DeadLetter(f"{PROCESSING_ERROR}: {kind}: {str(error)[:300]}", src, record.key,
                        record.value, PROCESSING_ERROR, error_type=kind)
        counts = BatchCounts.of(dead=[PROCESSING_ERROR])
        stats = self.stats

        def account() -> None:
            stats.dead_letters.update(counts.dead)

        out = OutRecord(self.dead_letter_topic, dl.key, dl.to_json(self.worker_id), dl.headers())
        return Processed([out], dead_letters=1, account=account, counts=counts)

    async def _read(self, customers: dict[str, int], ticks: Sequence[tuple[int, float]],
                    partitions: set[int]) -> tuple[dict[str, CustomerState], list[list[str]],
                                                   dict[str, str]]:
        """The batch's one read, after the partitions were brought up to the changelog."""
        asked = {c: p for c, p in customers.items() if c not in self._overlay}
        due = [(p, now, TICK_LIMIT) for p, now in ticks]
        marks = partitions if self.restorer is not None else ()
        got = await self.store.read(asked, due=due, marks=marks)
        if self.restorer is not None and await self.restorer.bring_up(got.marks):
            got = await self.store.read(asked, due=due, marks=marks)  # what was restored
        states = got.states
        for c in customers.keys() - asked.keys():
            states[c] = unpack_stored(self._overlay[c])  # a fresh copy: the run may fail
        return states, got.due, dict(got.quarantined)

    async def _run(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
        if not records:
            return Processed([])
        stats = self.stats
        events: list[InRecord] = []
        envs: list[Envelope] = []
        ticks: list[tuple[int, InRecord, float]] = []  # (record index, record, clock)
        part_of: dict[str, int] = {}
        for i, r in enumerate(records):
            item = r.item
            if type(item) is Envelope:
                events.append(r)
                envs.append(item)
                part_of[item.event.customer] = r.partition
            elif isinstance(item, float):
                ticks.append((i, r, item))
        partitions = {r.partition for r in records}
        states, due_lists, corrupt = await self._read(
            part_of, [(r.partition, now) for _, r, now in ticks], partitions)
        if corrupt:  # their events are dead letters, never decided
            kept = [(r, e) for r, e in zip(events, envs, strict=True)
                    if e.event.customer not in corrupt]
            events, envs = [r for r, _ in kept], [e for _, e in kept]
        t0 = time.perf_counter()
        result = decide(pack, states, envs, trace=self.trace)
        stats.decide_seconds.observe(time.perf_counter() - t0)
        changed = set(result.changed)

        per_record: dict[int, list[tuple[bytes, bytes]]] = {}  # record index -> (key, value)
        ri = 0  # index of the current event record in ``records``
        for r, env, outcome in zip(events, envs, result.outcomes, strict=True):
            while records[ri] is not r:
                ri += 1
            status = outcome.status
            if status == "failed":
                raise RecordFailed(ri, outcome.error or RuntimeError("failed"))
            if status != "processed" or not outcome.decisions:
                continue
            try:
                key = env.event.customer.encode()
                per_record[ri] = [(key, d.to_json()) for d in outcome.decisions]
            except Exception as exc:
                raise RecordFailed(ri, exc) from exc

        for (i, r, now), indexed_list in zip(ticks, due_lists, strict=True):
            # a set: its order does not matter, tick() fires in its own defined order
            due = set(indexed_list) | {c for c, p in part_of.items() if p == r.partition}
            missing = {c: r.partition for c in due if c not in states and c not in corrupt}
            if missing:  # due customers not in the batch: one more read
                more, _, also_corrupt = await self._read(missing, (), set())
                states.update(more)
                part_of.update(missing)
                corrupt.update(also_corrupt)
            fired = tick(pack, {c: states[c] for c in due if c in states and c not in corrupt},
                         now, trace=self.trace)
            # writing every customer the index named re-indexes (or un-indexes) them: one
            # with nothing due behind it would else come back at every tick
            changed |= fired.changed | {c for c in indexed_list if c not in corrupt}
            result.add_tick(fired)
            encoded: list[tuple[bytes, bytes]] = []
            for d in fired.fired:
                try:
                    encoded.append((d.customer.encode(), d.to_json()))
                except Exception as exc:  # fail closed: that follow-up sends nothing
                    result.faults.append(RuleFault(d.rule, d.event_id,
                                                   f"{type(exc).__name__}: {exc}"))
            if encoded:
                per_record[i] = encoded

        writes = self._encode(changed, states, part_of)
        return self._output(pack, records, per_record, writes, corrupt, result, envs)

    def _encode(self, changed: set[str], states: dict[str, CustomerState],
                part_of: dict[str, int]) -> dict[int, dict[str, Encoded]]:
        """Each changed customer's stored value (the version counts its writes), by
        partition. A state that does not encode raises: the batch is split around it."""
        writes: dict[int, dict[str, Encoded]] = {}
        for c in changed:
            st = states[c]
            value = pack_stored(st, st.version + 1)
            st.version += 1
            p = part_of.get(c, 0)
            group = writes.get(p)
            if group is None:
                group = writes[p] = {}
            group[c] = (st, value)
        return writes

    def _output(self, pack: RulePack, records: Sequence[InRecord],
                per_record: dict[int, list[tuple[bytes, bytes]]],
                writes: dict[int, dict[str, Encoded]], corrupt: dict[str, str],
                result: BatchResult, envs: list[Envelope]) -> Processed:
        """The records to produce, in source order, then the changelog; the counts."""
        out: list[OutRecord] = []
        headers = decision_headers(pack.version)
        dead: list[str] = []
        produced = 0
        for i, r in enumerate(records):
            item = r.item
            if corrupt and type(item) is Envelope and item.event.customer in corrupt:
                item = DeadLetter(corrupt[item.event.customer], r.source or Source(
                    "", r.partition, r.offset), r.key, r.value, STATE_CORRUPT)
            if isinstance(item, DeadLetter):
                out.append(OutRecord(self.dead_letter_topic, item.key,
                                     item.to_json(self.worker_id), item.headers()))
                dead.append(item.kind)
                continue
            for key, value in per_record.get(i, ()):
                out.append(OutRecord(self.decisions_topic, key, value, headers))
                produced += 1
        if self.state_topic is not None:
            topic = self.state_topic
            for p, states in writes.items():
                out.extend(OutRecord(topic, c.encode(), value, partition=p)
                           for c, (_st, value) in states.items())
        for f in result.faults:
            log.warning("rule %s failed on event %s: %s", f.rule, f.event_id, f.error)
        fresh = result.decisions + result.ticked
        counts = BatchCounts.of(
            event_types=[e.event.type for e in envs], decisions=fresh, dead=dead,
            faults=[f.rule for f in result.faults],
            duplicates=sum(1 for o in result.outcomes if o.status == "duplicate"))
        tick_count = sum(1 for r in records if isinstance(r.item, float))
        fired_total = len(result.ticked)
        stats = self.stats

        def account() -> None:
            """Count the batch in the stats; the caller does it once the batch committed."""
            stats.events_in.update(counts.events)
            stats.duplicates += counts.duplicates
            stats.count(counts)
            stats.rule_faults.update(counts.faults)
            stats.dead_letters.update(counts.dead)
            stats.ticks += tick_count
            stats.fired += fired_total

        return Processed(out, produced, len(dead), account=account, counts=counts,
                         writes=writes, result=result)
