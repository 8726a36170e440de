"""One batch through the core: states in, pipeline, outbox, states out; records to produce.

No Kafka here: :class:`BatchProcessor` takes decoded records (events, ticks, dead letters,
each with its source partition and offset) and returns the records the caller must produce,
in one transaction with the batch's offsets. The order of writes is the protocol of
``docs/worker.md``:

1. load the states of the batch's customers (one read), run :func:`engine.pipeline.decide`,
   then fire follow-ups for each tick record;
2. write the outbox: every source record's decisions, by offset and customer;
3. save the changed states (one write per source partition: the follow-up index is per
   partition);
4. (caller) produce decisions and dead letters, send offsets, commit the transaction.

A record whose event the state already saw (``duplicate``) re-emits what the outbox holds
for its offset: nothing for a genuine duplicate, the earlier decisions when the worker died
(or lost a state conflict) after step 3 and before 4. On a state conflict the whole batch
is run again from a fresh load; customers already written then come back as duplicates and
their decisions from the outbox.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from engine.errors import StateConflictError
from engine.models.decision import Decision
from engine.models.event import Envelope
from engine.models.state import CustomerState
from engine.pack.model import RulePack
from engine.pipeline import decide, tick
from engine.state.base import StateStore
from engine.worker.codec import DeadLetter, decision_headers
from engine.worker.outbox import Entries, Outbox
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


def _has_param(fn: object, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


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
        self._save_by_partition = _has_param(store.save, "partition")
        self._due_by_partition = _has_param(store.due_customers, "partition")

    # -- ownership ------------------------------------------------------------------------
    def forget(self, slots: Iterable[str]) -> None:
        """Drop the cached outbox of revoked partitions (reloaded if assigned again)."""
        for s in slots:
            self._boxes.pop(s, None)

    async def _ensure_boxes(self, slots: Iterable[str]) -> None:
        missing = sorted({s for s in slots if s not in self._boxes})
        if missing:
            self._boxes.update(await self.outbox.load(missing))

    # -- state store calls (the Redis store indexes follow-ups per partition) -------------
    async def _save(self, states: dict[str, CustomerState], partition: int) -> None:
        if self._save_by_partition:
            await self.store.save(states, partition=partition)  # type: ignore[call-arg]
        else:
            await self.store.save(states)

    async def _due(self, now: float, partition: int) -> list[str]:
        if self._due_by_partition:
            due: list[str] = await self.store.due_customers(  # type: ignore[call-arg]
                now, TICK_LIMIT, partition=partition)
            return due
        return await self.store.due_customers(now, TICK_LIMIT)

    # -- the batch ------------------------------------------------------------------------
    async def process(self, pack: RulePack, records: Sequence[InRecord]) -> Processed:
        """Decide and persist one batch; retried from scratch on a state conflict."""
        await self._ensure_boxes(r.slot for r in records)
        for run in range(1, MAX_CONFLICT_RUNS + 1):
            try:
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
        events = [r for r in records if isinstance(r.item, Envelope)]
        envs = [r.item for r in events if isinstance(r.item, Envelope)]
        part_of: dict[str, int] = {e.event.customer: r.partition for r, e in zip(events, envs,
                                                                                 strict=True)}
        states = await self.store.load(list(part_of))
        t0 = time.perf_counter()
        result = decide(pack, states, envs)
        stats.decide_seconds.observe(time.perf_counter() - t0)
        changed = set(result.changed)
        faults = list(result.faults)

        per_record: dict[int, list[tuple[bytes, bytes]]] = {}  # record index -> (key, value)
        entries: dict[str, Entries] = {}
        reemitted = produced = 0
        fresh: list[Decision] = []
        index = {id(r): i for i, r in enumerate(records)}
        for r, env, outcome in zip(events, envs, result.outcomes, strict=True):
            cust = env.event.customer
            if outcome.status == "processed":
                ds = [d.to_json() for d in outcome.decisions]
                fresh.extend(outcome.decisions)
            else:
                ds = self._boxes.get(r.slot, {}).get(r.offset, {}).get(cust, [])
                reemitted += len(ds)
            if ds:
                key = cust.encode()
                per_record[index[id(r)]] = [(key, d) for d in ds]
                entries.setdefault(r.slot, {})[r.offset] = {cust: ds}

        fired_total = 0
        for i, r in enumerate(records):
            if not isinstance(r.item, float):
                continue
            now = r.item
            indexed = set(await self._due(now, r.partition))
            due = indexed | {c for c, p in part_of.items() if p == r.partition}
            missing = [c for c in due if c not in states]
            if missing:
                states.update(await self.store.load(missing))
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
            for c, ds in self._boxes.get(r.slot, {}).get(r.offset, {}).items():
                if c not in by_cust:
                    by_cust[c] = ds
                    reemitted += len(ds)
            if by_cust:
                per_record[i] = [(c.encode(), d) for c, ds in by_cust.items() for d in ds]
                entries.setdefault(r.slot, {})[r.offset] = by_cust

        # 2. the outbox, before any state is written
        await self._write_outbox(records, entries)
        # 3. the states, one save per source partition
        by_part: dict[int, dict[str, CustomerState]] = {}
        for c in changed:
            by_part.setdefault(part_of.get(c, 0), {})[c] = states[c]
        for p, sts in sorted(by_part.items()):
            await self._save(sts, p)

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

        def account() -> None:
            """Count the batch in the stats; the caller does it once the batch committed."""
            for env, outcome in zip(envs, result.outcomes, strict=True):
                stats.events_in[env.event.type] += 1
                if outcome.status == "duplicate":
                    stats.duplicates += 1
            for d in fresh:
                stats.count_decision(d)
            for f in faults:
                stats.rule_faults[f.rule] += 1
            for r in records:
                if isinstance(r.item, DeadLetter):
                    stats.dead_letters[r.item.kind] += 1
                elif isinstance(r.item, float):
                    stats.ticks += 1
            stats.fired += fired_total
            stats.reemitted += reemitted

        return Processed(out, produced, reemitted, dead, account=account)

    async def _write_outbox(self, records: Sequence[InRecord], entries: dict[str, Entries]) -> None:
        last: dict[str, int] = {}
        for r in records:
            last[r.slot] = max(last.get(r.slot, -1), r.offset)
        writes: dict[str, Entries] = {}
        for slot, hi in last.items():
            old = self._boxes.get(slot, {})
            new = dict(entries.get(slot, {}))
            # keep what a previous incarnation wrote beyond this batch: we will get there
            new.update({o: e for o, e in old.items() if o > hi})
            if new or old:
                writes[slot] = new
        if writes:
            await self.outbox.write(writes)
            self._boxes.update(writes)

