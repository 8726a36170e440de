"""The streaming worker, assembled: topics, store, changelog, pack watcher, consumer,
producers.

:class:`StreamWorker` has no Faust in it, so tests can run it inside their own event loop;
:mod:`engine.worker.app` wraps it in the Faust app (lifecycle, signals, web server, timers).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.coordinator.assignors.range import (  # type: ignore[import-untyped,unused-ignore]
    RangePartitionAssignor,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

from connectors.http.ingest import kafka_sender
from connectors.kafka import clients
from connectors.kafka.admin import TopicSpec, ensure_topics, topic_partitions
from engine.compiled import core_build
from engine.config import TactSettings
from engine.errors import TactError, WorkerNotReadyError
from engine.models.event import Event
from engine.models.limits import EventBounds
from engine.pack.model import RulePack
from engine.state.base import StateStore
from engine.state.memory import MemoryStateStore
from engine.worker.batch import BatchConsumer
from engine.worker.changelog import CONSUMER_OPTIONS, KafkaChangelog
from engine.worker.followups import FollowupTimer, tick_records, ticks_topic
from engine.worker.process import BatchProcessor
from engine.worker.reload import PackWatcher, ReloadOutcome
from engine.worker.restore import Restored, Restorer
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import Telemetry

if TYPE_CHECKING:
    from engine.outcomes.aggregate import ReportWriter

log = logging.getLogger("tact.worker")

DEFAULT_PREFIX = "tact:"


def default_worker_id() -> str:
    return os.environ.get("TACT_WORKER_ID") or socket.gethostname() or "tact-worker"


@dataclass
class WorkerOptions:
    """What the worker needs beyond :class:`TactSettings`."""

    settings: TactSettings = field(default_factory=TactSettings)
    worker_id: str = field(default_factory=default_worker_id)
    redis_prefix: str = DEFAULT_PREFIX
    wall_clock_ticks: bool = True  # off: only tick records appended by a caller fire
    memory_state: bool = False  # memory store: nothing survives the process
    pack: RulePack | None = None  # serve this pack instead of loading settings.rules_path
    static_membership: bool = True  # restart under the same id: no rebalance wait
    transaction_timeout_ms: int = 15_000
    max_backoff_s: float = 10.0
    create_topics: bool = True


class StreamWorker:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        s = options.settings
        self.settings = s
        self.stats = WorkerStats()
        self.telemetry = Telemetry(self.stats)
        self.watcher = PackWatcher(Path(s.rules_path), self.stats)
        self.events_topic = s.events_topic
        self.ticks_topic = ticks_topic(s.events_topic)
        self.transactional_id = f"{s.consumer_group}.{options.worker_id}"
        self.store: StateStore | None = None
        self.report: ReportWriter | None = None  # outcome totals in Redis (none in memory)
        self.changelog: KafkaChangelog | None = None
        self.batch: BatchConsumer | None = None
        self._consumer: Any = None
        self._tick_producer: Any = None
        self.timer: FollowupTimer | None = None
        self._task: asyncio.Task[None] | None = None
        self.started = False
        self.kpi_board: Any = None  # a KpiBoard with Redis: the dashboard's experience KPIs

    # -- start / stop ---------------------------------------------------------------------
    async def start(self) -> None:
        s, o = self.settings, self.options
        if o.pack is not None:
            self.watcher.use(o.pack)
        else:
            pack = await asyncio.to_thread(self.watcher.load_initial)
            log.info("rule pack %s@%s loaded from %s", pack.name, pack.version, s.rules_path)
        await self._ensure_topics()
        report: Any = None  # a ReportWriter with Redis (imported with it)
        if o.memory_state:
            self.store = MemoryStateStore()
        else:
            from engine.outcomes.aggregate import ReportWriter
            from engine.state.redis.store import RedisStateStore

            store = RedisStateStore.from_settings(s, prefix=o.redis_prefix)
            store.observe = self.telemetry.redis_call
            self.store = store
            report = self.report = ReportWriter(store.client, o.redis_prefix)
            from engine.outcomes.kpi_board import KpiBoard

            self.kpi_board = KpiBoard(store.client, o.redis_prefix)

        self.changelog = changelog(s, f"tact-restore-{o.worker_id}")
        restorer = Restorer(self.store, self.changelog, self.stats)
        self._tick_producer = clients.aio_idempotent_producer(
            s, client_id=f"tact-ticks-{o.worker_id}")
        await self._tick_producer.start()
        self.timer = FollowupTimer(self.store, self.ticks_topic, self._send_tick)
        processor = BatchProcessor(self.store, self.stats, decisions_topic=s.decisions_topic,
                                   dead_letter_topic=s.dead_letter_topic,
                                   state_topic=s.state_topic, restorer=restorer,
                                   worker_id=o.worker_id, report=report)
        self._consumer = clients.aio_consumer(
            s, group_id=s.consumer_group,
            client_id=f"tact-{o.worker_id}",
            group_instance_id=o.worker_id if o.static_membership else None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",
            partition_assignment_strategy=(RangePartitionAssignor,),
            max_partition_fetch_bytes=4 * 1024 * 1024)

        def producer_factory() -> Any:
            return clients.aio_transactional_producer(
                s, self.transactional_id,
                transaction_timeout_ms=o.transaction_timeout_ms,
                linger_ms=2, max_batch_size=256 * 1024, request_timeout_ms=15_000,
                client_id=f"tact-decisions-{o.worker_id}")

        self.batch = BatchConsumer(
            self._consumer, producer_factory, processor, self.watcher, self.timer, self.stats,
            events_topic=self.events_topic, ticks_topic=self.ticks_topic,
            group_id=s.consumer_group, max_events=s.batch_max_events, state_topic=s.state_topic,
            max_latency_ms=s.batch_max_latency_ms, max_backoff_s=o.max_backoff_s,
            bounds=EventBounds.from_settings(s))
        self.batch.telemetry = self.telemetry
        self.telemetry.set_pack(self.watcher.pack)
        # the transactional producer first: it fences (aborts) a crashed predecessor's
        # open transaction before we read what that transaction covered
        await self.batch.start_producer()
        self._consumer.subscribe([self.events_topic, self.ticks_topic],
                                 listener=self.batch.listener())
        await self._consumer.start()
        self._task = asyncio.create_task(self.batch.run(), name="tact-batch-consumer")
        self.started = True
        core = core_build()
        log.log(logging.WARNING if core.stale else logging.INFO,
                "worker %s consuming %s (+%s) as group %s; core: %s", o.worker_id,
                self.events_topic, self.ticks_topic, s.consumer_group, core.describe())

    async def _ensure_topics(self) -> None:
        """Create missing topics (with ``create_topics`` off: fail naming the missing ones);
        the ticks topic gets the events topic's partition count."""
        s, create = self.settings, self.options.create_topics
        await asyncio.to_thread(ensure_topics, s, {
            s.events_topic: TopicSpec(s.events_partitions),
            s.decisions_topic: TopicSpec(s.decisions_partitions),
            s.dead_letter_topic: TopicSpec(1),
        }, create=create)
        parts = await topic_partitions(s, s.events_topic) or s.events_partitions
        # co-partitioned with the events: a partition's ticks and states go with its events;
        # the changelog keeps each customer's latest state (compacted)
        await asyncio.to_thread(ensure_topics, s, {
            self.ticks_topic: TopicSpec(parts),
            s.state_topic: TopicSpec(parts, config={"cleanup.policy": "compact"}),
        }, create=create)
        for topic in (self.ticks_topic, s.state_topic):
            got = await topic_partitions(s, topic)
            if got != parts:
                raise TactError(f"{topic} has {got} partitions but {s.events_topic} has "
                                f"{parts}: they must be co-partitioned")

    async def _send_tick(self, topic: str, value: bytes, partition: int) -> None:
        await self._tick_producer.send_and_wait(topic, value, partition=partition)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def stop(self) -> None:
        """Finish the batch in flight (it commits), then leave the group and close."""
        if self.batch is not None:
            self.batch.stop()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 60)
            except Exception as exc:
                log.warning("batch consumer ended with %r", exc)
                self._task.cancel()
        for closer in (
            self._consumer.stop if self._consumer else None,
            self.batch.close if self.batch else None,
            self._tick_producer.stop if self._tick_producer else None,
            self.store.close if self.store else None,
            self.changelog.close if self.changelog else None,
        ):
            if closer is None:
                continue
            try:
                await asyncio.wait_for(closer(), 15)
            except Exception as exc:
                log.warning("closing: %r", exc)
        self.started = False

    # -- timers (driven by Faust in `tact run`, by the caller in-process) -----------------
    async def followup_tick(self) -> list[int]:
        if self.timer is None or not self.options.wall_clock_ticks:
            return []
        try:
            return await self.timer.run_once()
        except Exception as exc:  # Redis or Kafka down: the next interval tries again
            log.warning("follow-up timer: %r", exc)
            return []

    async def reload_poll(self) -> ReloadOutcome | None:
        return await self.watcher.poll()

    async def request_ticks(self, now: float,
                            partitions: Iterable[int] | None = None) -> dict[int, int]:
        """Move the clock of these partitions (default: all) to ``now`` (tests, replays).

        Returns each tick record's offset; the tick is processed once the group's committed
        offset on that ticks partition passes it.
        """
        if partitions is None:
            partitions = range(await topic_partitions(self.settings, self.ticks_topic) or 0)
        out: dict[int, int] = {}
        for p, value in tick_records(now, partitions):
            meta = await self._tick_producer.send_and_wait(self.ticks_topic, value, partition=p)
            out[p] = int(meta.offset)
        return out

    # -- ingest and telemetry -------------------------------------------------------------
    async def ingest(self, events: Sequence[Event]) -> None:
        """``POST /events``: append the events to the events topic, acknowledged by Kafka."""
        producer = self._tick_producer
        if producer is None or not self.started:
            raise WorkerNotReadyError("the worker has not started yet")
        await kafka_sender(producer, self.events_topic)(events)

    async def refresh_telemetry(self) -> None:
        """The read gauges: consumer lag per events partition, pending follow-ups, the pack."""
        lag: dict[int, int] | None = None
        pending: int | None = None
        consumer, batch = self._consumer, self.batch
        if consumer is not None and batch is not None:
            mine = [tp for tp in consumer.assignment() if tp.topic == self.events_topic]
            try:
                lag = await self._lag(mine)
            except (TimeoutError, KafkaError) as exc:
                log.debug("consumer lag not refreshed: %r", exc)
            if self.store is not None:
                try:
                    pending = await asyncio.wait_for(
                        self.store.pending_followups(tp.partition for tp in mine), 5)
                except (TimeoutError, TactError) as exc:
                    log.debug("pending follow-ups not refreshed: %r", exc)
        self.telemetry.refresh(pack=self.watcher.pack if self.watcher.loaded else None,
                               lag=lag, pending_followups=pending)
        await self._refresh_campaigns()

    async def _refresh_campaigns(self) -> None:
        """The latest campaign runs' progress, from their checkpoints in Redis."""
        from engine.campaigns.redis import RedisCheckpoints
        from engine.state.redis.store import RedisStateStore

        store = self.store
        if not isinstance(store, RedisStateStore) or not self.watcher.loaded \
                or not self.watcher.pack.campaigns:
            return
        try:
            runs = await asyncio.wait_for(
                RedisCheckpoints(store.client, store.prefix).recent(), 5)
        except (TimeoutError, TactError) as exc:
            log.debug("campaign runs not refreshed: %r", exc)
            return
        self.telemetry.set_campaign_runs(runs, self.watcher.pack.campaigns)

    async def _lag(self, tps: list[Any]) -> dict[int, int]:
        """End offset minus the next offset to process (committed), per partition."""
        if not tps or self._consumer is None or self.batch is None:
            return {}
        ends = await asyncio.wait_for(self._consumer.end_offsets(tps), 5)
        out: dict[int, int] = {}
        for tp in tps:
            pos = self.batch.positions.get(tp)
            if pos is None:
                pos = await asyncio.wait_for(self._consumer.committed(tp), 5) or 0
            out[tp.partition] = max(0, int(ends[tp]) - int(pos))
        return out

    # -- health ---------------------------------------------------------------------------
    async def readiness(self) -> dict[str, Any]:
        """Kafka and Redis reachable, a pack loaded, the batch loop alive and not failing."""
        kafka = redis = False
        if self._consumer is not None:
            try:
                await asyncio.wait_for(self._consumer.topics(), 3)
                kafka = True
            except Exception:
                kafka = False
        if self.store is not None:
            try:
                redis = await asyncio.wait_for(self.store.ping(), 3)
            except Exception:
                redis = False
        loop_alive = self._task is not None and not self._task.done()
        checks = {"kafka": kafka, "redis": redis, "rules": self.watcher.loaded,
                  "consumer": loop_alive}
        return {
            "ready": all(checks.values()),
            "checks": checks,
            "rules_version": self.stats.rules_version,
            "processing": bool(self.batch and self.batch.healthy),
            "last_error": self.batch.last_error if self.batch else "",
            "rules_errors": self.watcher.last_errors,
        }


async def rebuild(settings: TactSettings, prefix: str, partitions: Sequence[int] | None,
                  report: Callable[[str], None]) -> list[Restored]:
    """Rebuild ``partitions`` (default: every partition of the changelog topic)."""
    count = await topic_partitions(settings, settings.state_topic)
    if count is None:
        raise TactError(f"the changelog topic {settings.state_topic} does not exist")
    chosen = sorted(set(partitions)) if partitions else list(range(count))
    wrong = [p for p in chosen if not 0 <= p < count]
    if wrong:
        raise TactError(f"{settings.state_topic} has partitions 0..{count - 1}, not {wrong}")

    from engine.state.redis.store import RedisStateStore

    store = RedisStateStore.from_settings(settings, prefix=prefix)
    log = changelog(settings, "tact-state-restore")
    restorer = Restorer(store, log)
    done: list[Restored] = []
    try:
        for p in chosen:
            got = await restorer.restore(p, fresh=True)
            report(f"partition {p}: {got.states} states, changelog up to {got.mark}, "
                   f"{got.seconds:.2f} s")
            done.append(got)
    finally:
        await log.close()
        await store.close()
    return done


def changelog(settings: TactSettings, client_id: str) -> KafkaChangelog:
    """A reader of the state changelog topic (security from the settings)."""
    return KafkaChangelog(settings.state_topic, lambda: clients.aio_consumer(
        settings, client_id=client_id, **CONSUMER_OPTIONS))
