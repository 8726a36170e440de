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

from engine.errors import StateConflictError
from engine.models.decision import Decision
from engine.models.event import Envelope
from engine.models.state import CustomerState
from engine.observability.counts import BatchCounts
from engine.pack.model import RulePack
from engine.pipeline import decide, tick
from engine.state.base import StateStore
from engine.worker.codec import DeadLetter, decision_headers
from engine.worker.outbox import Entries, Outbox, batch_io
from engine.worker.stats import WorkerStats

log = logging.getLogger("tact.worker")

TICK_LIMIT = 5000  # customers fired per tick record; the rest wait for the next tick
MAX_CONFLICT_RUNS = 5


@dataclass(slots=True)
class InRecord:
    """A consumed record, decoded. ``partition`` is the source partition number (events and
    ticks topics are co-partitioned); ``slot`` names its outbox slot."""

    slot: str
    partition: int
    offset: int
    item: Envelope | DeadLetter | float | None  # event, dead letter, tick clock, skipped


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
        """Decide and persist one batch; retried from scratch on a state conflict."""
        for run in range(1, MAX_CONFLICT_RUNS + 1):
            try:
                with gc_paused():
                    out = await self._run(pack, records)
            except StateConflictError as exc:
                self.stats.conflicts += 1
                log.warning("state conflict (run %d of the batch): %s; reloading", run, exc)
                if run == MAX_CONFLICT_RUNS:
                    raise
                continue
            out.runs = run
            return out
        raise AssertionError("unreachable")

    async def _run(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
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
            if outcome.status == "processed":
                if not outcome.decisions:
                    continue
                ds = [d.to_json() for d in outcome.decisions]
                fresh.extend(outcome.decisions)
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
            missing = [c for c in due if c not in states]
            if missing:  # due customers not in the batch: one more read
                states.update(await self.io.load(missing))
                part_of.update(dict.fromkeys(missing, r.partition))
            tr = tick(pack, {c: states[c] for c in due}, now)
            changed |= tr.changed
            # saving every customer the index named rewrites its entry: one with nothing due
            # behind it (stale, or its state expired) would else come back at every tick
            changed |= indexed
            faults.extend(tr.faults)
            by_cust: dict[str, list[bytes]] = {}
            for d in tr.fired:
                by_cust.setdefault(d.customer, []).append(d.to_json())
            fresh.extend(tr.fired)
            fired_total += len(tr.fired)
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
        writes = self._outbox_writes(records, entries)
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

    def _outbox_writes(self, records: Sequence[InRecord],
                       entries: dict[str, Entries]) -> dict[str, Entries]:
        """Each slot's new outbox map: this batch's entries, plus what an earlier incarnation
        wrote beyond this batch (we will get there); entries below the batch are dropped."""
        last: dict[str, int] = {}
        for r in records:
            if r.offset > last.get(r.slot, -1):
                last[r.slot] = r.offset
        writes: dict[str, Entries] = {}
        for slot, hi in last.items():
            old = self._boxes.get(slot, {})
            new = dict(entries.get(slot, {}))
            new.update({o: e for o, e in old.items() if o > hi})
            if new or old:
                writes[slot] = new
        return writes
