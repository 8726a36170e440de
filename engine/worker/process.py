"""One batch through the core: states in, pipeline, outbox, states out; records to produce.

No Kafka here: :class:`BatchProcessor` takes decoded records (events, ticks, dead letters,
each with its source partition and offset) and returns the records the caller must produce,
in one transaction with the batch's offsets. The order of writes is the protocol of
``docs/worker.md``:

1. read the states of the batch's customers, the outbox of newly owned partitions and each
   tick's due follow-ups (one read), run :func:`engine.pipeline.decide`, then fire
   follow-ups for each tick record;
2. write the outbox: every source record's decisions, by offset and customer;
3. save the changed states (per source partition: the follow-up index is per partition).
   On Redis, 2 and 3 are one atomic script call (:mod:`engine.worker.outbox`,
   :class:`~engine.worker.outbox.BatchIO`); elsewhere the outbox is written first;
4. (caller) produce decisions and dead letters, send offsets, commit the transaction.

One record's fault is that record's dead letter, never the batch's. The core reports an
event that raised as ``failed``; anything else that raises (encoding a decision or a state,
say) is not pinned to a record. Either way nothing of that run was written: the batch is run
again around the record (the records before it, then the ones after it, each from freshly
loaded state), halving it when the record is unknown, and a record that fails alone is
dead-lettered with reason ``processing_error`` and its original bytes. Its customer's state
stays as it was before that event. Infrastructure errors (:class:`StateStoreError`) are not
a record's fault: they propagate and the caller retries the batch after a back-off.

A record whose event the state already saw (``duplicate``) re-emits what the outbox holds
for its offset: nothing for a genuine duplicate, the earlier decisions when the worker died
(or lost a state conflict) after step 3 and before 4. On a state conflict the whole batch
is run again from a fresh load; customers already written then come back as duplicates and
their decisions from the outbox.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from engine.errors import StateConflictError, StateStoreError
from engine.models.decision import Decision
from engine.models.event import Envelope
from engine.models.state import CustomerState
from engine.observability.counts import BatchCounts
from engine.pack.model import RulePack
from engine.pipeline import decide, tick
from engine.pipeline.core import RuleFault
from engine.state.base import StateStore
from engine.worker.codec import DeadLetter, Source, decision_headers
from engine.worker.outbox import Entries, Outbox, batch_io
from engine.worker.stats import WorkerStats

log = logging.getLogger("tact.worker")

TICK_LIMIT = 5000  # customers fired per tick record; the rest wait for the next tick
MAX_CONFLICT_RUNS = 5


@dataclass(slots=True)
class InRecord:
    """A consumed record, decoded. ``partition`` is the source partition number (events and
    ticks topics are co-partitioned); ``slot`` names its outbox slot. ``source``, ``key``
    and ``value`` are the original record, for a dead letter should processing fail."""

    slot: str
    partition: int
    offset: int
    item: Envelope | DeadLetter | float | None  # event, dead letter, tick clock, skipped
    source: Source | None = None
    key: bytes | None = None
    value: bytes | None = None


class RecordFailed(Exception):
    """Processing raised for the record at ``index`` of the batch (nothing was written)."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index = index
        self.error = error
        super().__init__(f"record {index}: {type(error).__name__}: {error}")


PROCESSING_ERROR = "processing_error"
STATE_CORRUPT = "state_corrupt"


@dataclass(slots=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def _nothing() -> None:
    return None


@dataclass(slots=True)
class Processed:
    """What the caller produces; the counts are for the log and stats."""

    records: list[OutRecord]
    decisions: int = 0
    reemitted: int = 0
    dead_letters: int = 0
    runs: int = 1
    account: Callable[[], None] = _nothing  # updates the stats: call once committed
    # the batch counted once, for the stats and the metrics: fresh decisions only (not
    # re-emitted ones), events by type, dead letters by kind, duplicates, rule faults
    counts: BatchCounts = field(default_factory=BatchCounts)

    @classmethod
    def joined(cls, parts: Sequence[Processed]) -> Processed:
        """The parts of a batch run around a failed record, as one, in order."""
        accounts = [p.account for p in parts]

        def account() -> None:
            for acc in accounts:
                acc()

        counts = BatchCounts()
        for p in parts:
            counts.add(p.counts)
        return cls([r for p in parts for r in p.records], sum(p.decisions for p in parts),
                   sum(p.reemitted for p in parts), sum(p.dead_letters for p in parts),
                   sum(p.runs for p in parts), account, counts)


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
    def __init__(self, store: StateStore, outbox: Outbox, stats: WorkerStats, *,
                 decisions_topic: str, dead_letter_topic: str, worker_id: str = "") -> None:
        self.store = store
        self.outbox = outbox
        self.stats = stats
        self.decisions_topic = decisions_topic
        self.dead_letter_topic = dead_letter_topic
        self.worker_id = worker_id
        self._boxes: dict[str, Entries] = {}  # slot -> the map as last written
        self.io = batch_io(store, outbox)

    # -- ownership ------------------------------------------------------------------------
    def forget(self, slots: Iterable[str]) -> None:
        """Drop the cached outbox of revoked partitions (reloaded if assigned again)."""
        for s in slots:
            self._boxes.pop(s, None)

    # -- the batch ------------------------------------------------------------------------
    async def process(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
        """Decide and persist one batch; a record that cannot be processed is dead-lettered
        and the rest goes on (module docstring). Raises :class:`StateStoreError` (the batch
        must be retried)."""
        floor: dict[str, int] = {}
        for r in records:
            if r.offset < floor.get(r.slot, r.offset + 1):
                floor[r.slot] = r.offset
        return await self._isolating(pack, records, floor)

    async def _isolating(self, pack: RulePack, records: Sequence[InRecord],
                         floor: dict[str, int]) -> Processed:
        try:
            return await self._runs(pack, records, floor)
        except StateStoreError:
            raise
        except RecordFailed as failed:
            at, error = failed.index, failed.error
        except Exception as exc:  # not pinned to a record: halve the batch until it is
            if len(records) == 1:
                at, error = 0, exc
            else:
                mid = len(records) // 2
                return Processed.joined([await self._isolating(pack, records[:mid], floor),
                                         await self._isolating(pack, records[mid:], floor)])
        parts = [await self._isolating(pack, records[:at], floor)] if at else []
        parts.append(self._failed(records[at], error))
        if at + 1 < len(records):
            parts.append(await self._isolating(pack, records[at + 1:], floor))
        return Processed.joined(parts)

    def _failed(self, record: InRecord, error: BaseException) -> Processed:
        """A record that cannot be processed: its dead letter, with the original bytes."""
        kind = type(error).__name__
        log.warning("record %s@%d failed (%s: %.200s): dead-lettered as %s", record.slot,
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

    async def _runs(self, pack: RulePack, records: Sequence[InRecord],
                    floor: dict[str, int]) -> Processed:
        """Run the batch; from scratch again on a state conflict."""
        if not records:
            return Processed([])
        for run in range(1, MAX_CONFLICT_RUNS + 1):
            try:
                with gc_paused():
                    out = await self._run(pack, records, floor)
            except StateConflictError as exc:
                self.stats.conflicts += 1
                log.warning("state conflict (run %d of the batch): %s; reloading", run, exc)
                if run == MAX_CONFLICT_RUNS:
                    raise
                continue
            out.runs = run
            return out
        raise AssertionError("unreachable")

    async def _run(self, pack: RulePack, records: Sequence[InRecord],
                   floor: dict[str, int]) -> Processed:
        stats = self.stats
        boxes = self._boxes
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
        # 1. one read: states, the outbox of slots not cached yet, each tick's due customers
        slots = sorted({r.slot for r in records if r.slot not in boxes})
        states, loaded, due_lists = await self.io.read(
            list(part_of), slots, [(r.partition, now) for _, r, now in ticks], TICK_LIMIT)
        boxes.update(loaded)
        corrupt = dict(self.io.quarantined)  # their events are dead letters, never decided
        if corrupt:
            kept = [(r, e) for r, e in zip(events, envs, strict=True)
                    if e.event.customer not in corrupt]
            events, envs = [r for r, _ in kept], [e for _, e in kept]
        t0 = time.perf_counter()
        result = decide(pack, states, envs)
        stats.decide_seconds.observe(time.perf_counter() - t0)
        changed = set(result.changed)
        faults = list(result.faults)

        per_record: dict[int, list[tuple[bytes, bytes]]] = {}  # record index -> (key, value)
        entries: dict[str, Entries] = {}
        reemitted = produced = 0
        fresh: list[Decision] = []
        ri = 0  # index of the current event record in ``records``
        for r, env, outcome in zip(events, envs, result.outcomes, strict=True):
            while records[ri] is not r:
                ri += 1
            status = outcome.status
            if status == "processed":
                if not outcome.decisions:
                    continue
                try:
                    ds = [d.to_json() for d in outcome.decisions]
                except Exception as exc:
                    raise RecordFailed(ri, exc) from exc
                fresh.extend(outcome.decisions)
            elif status == "failed":
                raise RecordFailed(ri, outcome.error or RuntimeError("failed"))
            else:
                ds = boxes.get(r.slot, {}).get(r.offset, {}).get(env.event.customer, [])
                if not ds:
                    continue
                reemitted += len(ds)
            cust = env.event.customer
            key = cust.encode()
            per_record[ri] = [(key, d) for d in ds]
            slot_entries = entries.get(r.slot)
            if slot_entries is None:
                slot_entries = entries[r.slot] = {}
            slot_entries[r.offset] = {cust: ds}

        fired_total = 0
        for (i, r, now), indexed_list in zip(ticks, due_lists, strict=True):
            indexed = set(indexed_list)
            due = indexed | {c for c, p in part_of.items() if p == r.partition}
            missing = [c for c in due if c not in states and c not in corrupt]
            if missing:  # due customers not in the batch: one more read
                states.update(await self.io.load(missing))
                part_of.update(dict.fromkeys(missing, r.partition))
                corrupt.update(self.io.quarantined)
            due = {c for c in due if c in states and c not in corrupt}
            indexed -= corrupt.keys()  # a quarantined state is never written over
            tr = tick(pack, {c: states[c] for c in due}, now)
            changed |= tr.changed
            # saving every customer the index named rewrites its entry: one with nothing due
            # behind it (stale, or its state expired) would else come back at every tick
            changed |= indexed
            faults.extend(tr.faults)
            by_cust: dict[str, list[bytes]] = {}
            for d in tr.fired:
                try:
                    value = d.to_json()
                except Exception as exc:  # fail closed: that follow-up sends nothing
                    faults.append(RuleFault(d.rule, d.event_id, f"{type(exc).__name__}: {exc}"))
                    continue
                by_cust.setdefault(d.customer, []).append(value)
                fresh.append(d)
                fired_total += 1
            for c, ds in boxes.get(r.slot, {}).get(r.offset, {}).items():
                if c not in by_cust:
                    by_cust[c] = ds
                    reemitted += len(ds)
            if by_cust:
                per_record[i] = [(c.encode(), d) for c, ds in by_cust.items() for d in ds]
                entries.setdefault(r.slot, {})[r.offset] = by_cust

        # 2. + 3. the outbox, then the states (one atomic write on Redis)
        by_part: dict[int, dict[str, CustomerState]] = {}
        for c in changed:
            p = part_of.get(c, 0)
            sts = by_part.get(p)
            if sts is None:
                sts = by_part[p] = {}
            sts[c] = states[c]
        writes = self._outbox_writes(records, entries, floor)
        try:
            await self.io.write(writes, by_part)
        except StateConflictError:
            boxes.update(writes)  # written with the other customers: the rerun needs it
            raise
        except BaseException:
            self.forget(writes)  # written or not (a lost reply): reload from Redis next time
            raise
        boxes.update(writes)

        # the records to produce, in source order
        out: list[OutRecord] = []
        headers = decision_headers(pack.version)
        dead = 0
        for i, r in enumerate(records):
            item = r.item
            if corrupt and type(item) is Envelope and item.event.customer in corrupt:
                r.item = DeadLetter(corrupt[item.event.customer], r.source or Source(
                    "", r.partition, r.offset), r.key, r.value, STATE_CORRUPT)
            if isinstance(r.item, DeadLetter):
                dl = r.item
                out.append(OutRecord(self.dead_letter_topic, dl.key, dl.to_json(self.worker_id),
                                     dl.headers()))
                dead += 1
                continue
            for key, value in per_record.get(i, ()):
                out.append(OutRecord(self.decisions_topic, key, value, headers))
                produced += 1

        for f in faults:
            log.warning("rule %s failed on event %s: %s", f.rule, f.event_id, f.error)

        counts = BatchCounts.of(
            event_types=[e.event.type for e in envs], decisions=fresh,
            dead=[r.item.kind for r in records if isinstance(r.item, DeadLetter)],
            faults=[f.rule for f in faults],
            duplicates=sum(1 for o in result.outcomes if o.status == "duplicate"))
        tick_count = sum(1 for r in records if isinstance(r.item, float))

        def account() -> None:
            """Count the batch in the stats; the caller does it once the batch committed."""
            stats.events_in.update(counts.events)
            stats.duplicates += counts.duplicates
            stats.count(counts)
            stats.rule_faults.update(counts.faults)
            stats.dead_letters.update(counts.dead)
            stats.ticks += tick_count
            stats.fired += fired_total
            stats.reemitted += reemitted

        return Processed(out, produced, reemitted, dead, account=account, counts=counts)

    def _outbox_writes(self, records: Sequence[InRecord], entries: dict[str, Entries],
                       floor: dict[str, int]) -> dict[str, Entries]:
        """Each slot's new outbox map: this run's entries, plus what an earlier incarnation
        wrote beyond them (we will get there) and, when the batch is run in parts around a
        failed record, the earlier parts' (from ``floor``, the whole batch's first offset);
        entries below the batch are dropped."""
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for r in records:
            if r.offset > last.get(r.slot, -1):
                last[r.slot] = r.offset
            if r.offset < first.get(r.slot, r.offset + 1):
                first[r.slot] = r.offset
        writes: dict[str, Entries] = {}
        for slot, hi in last.items():
            old = self._boxes.get(slot, {})
            lo, keep_from = first[slot], floor.get(slot, first[slot])
            new = dict(entries.get(slot, {}))
            new.update({o: e for o, e in old.items() if o > hi or keep_from <= o < lo})
            if new or old:
                writes[slot] = new
        return writes
