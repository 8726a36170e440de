"""The batch consumer: aiokafka ``getmany`` batches through the core, one transaction each.

Per batch (see ``docs/worker.md``):

1. ``getmany`` up to ``batch_max_events`` records from the events and ticks topics (wait at
   most ``batch_max_latency_ms`` for a small batch to fill);
2. :class:`~engine.worker.process.BatchProcessor`: read the states, decide;
3. one Kafka transaction: the decisions, dead letters and changed states (the changelog),
   the batch's next offsets (``send_offsets_to_transaction``), commit. Offsets never move
   past unacknowledged records;
4. the changed states into the store, with the changelog position they reflect.

Any failure (Redis down, Kafka down, a conflict that keeps coming back) aborts the
transaction, seeks the batch's partitions back to the batch start and backs off
exponentially; the batch is fetched and processed again. A rebalance waits for the batch
in flight (the revoke callback takes the batch lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any

from aiokafka import (  # type: ignore[import-untyped,unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import (  # type: ignore[import-untyped,unused-ignore]
    KafkaError,
    ProducerFenced,
)

from engine.errors import StateStoreError, TactError
from engine.models.event import Envelope
from engine.models.limits import EventBounds
from engine.worker.codec import Source, decode_event, decode_tick
from engine.worker.followups import FollowupTimer
from engine.worker.process import BatchProcessor, InRecord, OutRecord, gc_paused
from engine.worker.produce import KeyPartitions, send_batches
from engine.worker.reload import PackWatcher
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import Telemetry

log = logging.getLogger("tact.worker")

ProducerFactory = Callable[[], Any]  # -> a started-able transactional AIOKafkaProducer


class FaultInjector:
    """Test hook: ``TACT_WORKER_FAULT=<point>:N`` makes the process die abruptly
    (``os._exit(70)``, no clean-up, like SIGKILL) in its N-th batch at ``point``:
    ``after-produce`` (records acknowledged, transaction not committed), ``after-commit``
    (committed, the store not written yet) or ``after-state`` (the store written). The
    kill-and-restart test uses it to hit the windows the protocol must survive."""

    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get("TACT_WORKER_FAULT", "") if spec is None else spec
        point, _, n = spec.partition(":")
        self.point = point.strip()
        self.batch = int(n) if n.strip().isdigit() else 1
        self.seen = 0

    def batch_started(self) -> None:
        self.seen += 1

    def maybe_die(self, point: str) -> None:
        if self.point == point and self.seen == self.batch:
            log.critical("fault injection: dying at %s of batch %d", point, self.seen)
            logging.shutdown()
            os._exit(70)


class FatalWorkerError(TactError):
    """The worker cannot go on (fenced by another instance with the same worker id)."""


class Backoff:
    def __init__(self, base: float = 0.1, cap: float = 10.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next(self) -> float:
        self.failures += 1
        delay: float = min(self.cap, self.base * 2.0 ** (self.failures - 1))
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self.failures = 0


class BatchConsumer:
    def __init__(
        self,
        consumer: Any,
        producer_factory: ProducerFactory,
        processor: BatchProcessor,
        watcher: PackWatcher,
        timer: FollowupTimer,
        stats: WorkerStats,
        *,
        events_topic: str,
        ticks_topic: str,
        group_id: str,
        max_events: int,
        max_latency_ms: int,
        max_backoff_s: float = 10.0,
        bounds: EventBounds | None = None,
        state_topic: str | None = None,
    ) -> None:
        self.consumer: AIOKafkaConsumer = consumer
        self._producer_factory = producer_factory
        self.producer: AIOKafkaProducer | None = None
        self.processor = processor
        self.watcher = watcher
        self.timer = timer
        self.stats = stats
        self.events_topic = events_topic
        self.ticks_topic = ticks_topic
        self.state_topic = state_topic
        self.group_id = group_id
        self.max_events = max_events
        self.max_latency_ms = max_latency_ms
        self.backoff = Backoff(cap=max_backoff_s)
        self.bounds = bounds or EventBounds()  # of event times: TACT_EVENT_EARLIEST, ..._MAX_AHEAD
        self.lock = asyncio.Lock()  # held while a batch is in flight
        self._stopping = asyncio.Event()
        self.healthy = True  # false while retrying a failed batch
        self.last_error = ""
        self.committed_batches = 0
        self.faults = FaultInjector()
        self.telemetry: Telemetry | None = None  # set by the worker: metrics, dashboard
        self.positions: dict[Any, int] = {}  # the next offset to process, per partition
        self.key_partitions = KeyPartitions()  # the decisions' partitions, across batches

    # -- lifecycle ------------------------------------------------------------------------
    def listener(self) -> ConsumerRebalanceListener:
        return _Listener(self)

    async def start_producer(self) -> None:
        producer = self._producer_factory()
        await producer.start()
        self.producer = producer

    async def _restart_producer(self) -> None:
        old, self.producer = self.producer, None
        if old is not None:
            try:
                await asyncio.wait_for(old.stop(), 10)
            except Exception as exc:  # already broken: nothing more to do with it
                log.debug("stopping the broken producer: %r", exc)
        await self.start_producer()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Consume until :meth:`stop`; the batch in flight is finished and committed."""
        if self.producer is None:
            await self.start_producer()
        while not self.stopping:
            try:
                batch = await self._fetch()
            except KafkaError as exc:
                self._failed("kafka", exc, {})
                await self._pause()
                continue
            if not batch:
                continue
            failed = False
            async with self.lock:  # a rebalance waits for this batch
                firsts = {tp: msgs[0].offset for tp, msgs in batch.items()}
                try:
                    with gc_paused():  # the batch's objects live until it ends: see process.py
                        await self._handle(batch)
                except ProducerFenced as exc:
                    raise FatalWorkerError(
                        "fenced: another worker took over this worker's transactional id; "
                        "give each worker a unique --worker-id") from exc
                except (TimeoutError, KafkaError, StateStoreError, OSError) as exc:
                    self._failed("redis" if isinstance(exc, StateStoreError) else "kafka",
                                 exc, firsts)
                    failed = True
                except Exception as exc:  # a bug, not the input (the processor isolates
                    # records): keep the partition, retry after a back-off, never exit
                    log.exception("batch failed unexpectedly")
                    self._failed("internal", exc, firsts)
                    failed = True
            if failed:
                await self._pause()  # outside the lock: a rebalance need not wait for it
                continue
            self.healthy = True
            self.backoff.reset()

    def _failed(self, kind: str, exc: BaseException, firsts: dict[Any, int]) -> None:
        """Record the failure and rewind the batch's partitions to the batch start."""
        self.healthy = False
        self.last_error = f"{kind}: {type(exc).__name__}: {exc}"
        self.stats.retries[kind] += 1
        assigned = self.consumer.assignment()
        for tp, offset in firsts.items():
            if tp in assigned:
                self.consumer.seek(tp, offset)

    async def _pause(self) -> None:
        delay = self.backoff.next()
        log.warning("batch failed (%s); retrying in %.2fs", self.last_error, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _fetch(self) -> dict[Any, list[Any]]:
        batch: dict[Any, list[Any]] = await self.consumer.getmany(
            timeout_ms=200, max_records=self.max_events)
        size = sum(len(v) for v in batch.values())
        if size and size < self.max_events and self.max_latency_ms > 0 and not self.stopping:
            more = await self.consumer.getmany(timeout_ms=self.max_latency_ms,
                                               max_records=self.max_events - size)
            for tp, msgs in more.items():
                batch.setdefault(tp, []).extend(msgs)
        return batch

    # -- one batch ------------------------------------------------------------------------
    async def _handle(self, batch: dict[Any, list[Any]]) -> None:
        t0 = time.perf_counter()
        received = time.time()
        window = self.bounds.window(received)  # once per batch, not per event
        records: list[InRecord] = []
        offsets: dict[Any, int] = {}
        produced_ms: list[int] = []
        for tp, msgs in batch.items():
            if not msgs:
                continue
            offsets[tp] = msgs[-1].offset + 1
            if tp.topic == self.ticks_topic:
                self.timer.consumed(tp.partition)
                for m in msgs:
                    src = Source(tp.topic, tp.partition, m.offset, m.timestamp)
                    records.append(InRecord(tp.partition, m.offset, decode_tick(m.value),
                                            src, m.key, m.value))
                continue
            produced_ms.extend(m.timestamp for m in msgs)
            for m in msgs:
                src = Source(tp.topic, tp.partition, m.offset, m.timestamp)
                item: Any = decode_event(m.key, m.value, m.headers, src, received, window)
                records.append(InRecord(tp.partition, m.offset, item, src, m.key, m.value))
        pack = self.watcher.pack  # one pack per batch: a reload swaps between batches
        self.faults.batch_started()
        processed = await self.processor.process(pack, records)
        t1 = time.perf_counter()
        marks = await self._commit(processed.records, offsets)
        self.positions.update(offsets)
        self.faults.maybe_die("after-commit")
        # committed: from here on the batch is not retried; a failed state write only makes
        # the next batch catch the store up from the changelog (process.py)
        await self.processor.apply(processed, marks)
        self.faults.maybe_die("after-state")
        done = time.perf_counter()
        try:  # committed: counting it must not make the batch look failed and rerun
            processed.account()
            if self.telemetry is not None:
                self.telemetry.batch_committed(processed, size=len(records), seconds=done - t0,
                                               produced_ms=produced_ms)
        except Exception:
            log.exception("counting a committed batch failed")
        st = self.stats
        st.batches += 1
        st.batch_size.observe(len(records))
        st.batch_seconds.observe(done - t0)
        st.commit_seconds.observe(done - t1)
        if any(isinstance(r.item, Envelope) for r in records):
            st.event_lag_seconds.observe(max(0.0, time.time() - received))
        self.committed_batches += 1

    async def _commit(self, records: list[OutRecord], offsets: dict[Any, int]
                      ) -> dict[int, int]:
        """Produce the batch's records and offsets in one transaction, acknowledged; per
        partition of the changelog, the position after this batch's records."""
        if self.producer is None:
            await self.start_producer()
        producer = self.producer
        assert producer is not None
        await producer.begin_transaction()
        try:
            sent = await send_batches(producer, records, self.key_partitions)
            metas = await asyncio.gather(*(f for f, _t, _n in sent)) if sent else []
            self.faults.maybe_die("after-produce")
            await producer.send_offsets_to_transaction(offsets, self.group_id)
            await producer.commit_transaction()
            marks: dict[int, int] = {}
            for meta, (_f, topic, count) in zip(metas, sent, strict=True):
                if topic == self.state_topic:
                    after = int(meta.offset) + count
                    if after > marks.get(meta.partition, -1):
                        marks[meta.partition] = after
            return marks
        except ProducerFenced:
            raise
        except BaseException:
            await self._abort(producer)
            raise

    async def _abort(self, producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.abort_transaction(), 10)
        except Exception as exc:
            log.warning("aborting the transaction failed (%r); restarting the producer", exc)
            try:
                await self._restart_producer()
            except Exception as exc2:  # Kafka down: the next batch tries again
                log.warning("producer restart failed: %r", exc2)
                self.producer = None

    async def close(self) -> None:
        if self.producer is not None:
            try:
                await asyncio.wait_for(self.producer.stop(), 15)
            except Exception as exc:
                log.warning("closing the producer: %r", exc)
            self.producer = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.lock:  # let the batch in flight commit first
            self.owner.processor.forget(_partitions(revoked, self.owner))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        owner = self.owner
        # checked against the changelog (caught up or rebuilt) before their first batch
        owner.processor.forget(_partitions(assigned, owner))
        owner.timer.assigned(tp.partition for tp in assigned if tp.topic == owner.events_topic)
        log.info("assigned partitions: %s",
                 ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "none")


def _partitions(tps: Any, owner: BatchConsumer) -> list[int]:
    return sorted({tp.partition for tp in tps
                   if tp.topic in (owner.events_topic, owner.ticks_topic)})


__all__ = ["Backoff", "BatchConsumer", "FatalWorkerError", "TopicPartition"]
