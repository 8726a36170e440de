"""Deliver sent decisions to a webhook: signed, held until deliver_after, retried, dead-lettered.

Consumes ``tact.decisions`` in its own group; suppressed decisions are skipped, sent ones are
scheduled for ``deliver_after`` without blocking their partition, POSTed with ``X-Tact-Signature``
and ``Idempotency-Key``, retried with backoff, dead-lettered after ``max_attempts``. Committed
offsets never pass a partition's lowest decision not yet done. Details: ``docs/connectors.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import (  # type: ignore[import-untyped,unused-ignore]
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]
from pydantic import SecretStr, ValidationError

from connectors.kafka import clients
from connectors.webhook.signing import SIGNATURE_HEADER, signature_header
from engine.config import TactSettings
from engine.errors import TactError
from engine.models.decision import Decision

__all__ = ["DeliveryConfig", "DeliveryStats", "WebhookDeliverer", "WebhookError", "redact"]

log = logging.getLogger("tact.webhook")

DEAD_LETTER_TOPIC = "tact.webhook-dead-letter"
_RETRIABLE_STATUS = frozenset({408, 429})


class WebhookError(TactError):
    """The webhook connector is misconfigured (URL, secret, limits) or cannot reach Kafka."""


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """Where and how to deliver; ``kafka``: the settings the Kafka clients are built from
    (brokers, SASL/SSL; :mod:`connectors.kafka.clients`)."""

    url: str = field(repr=False)  # may carry credentials
    secret: SecretStr
    topic: str = "tact.decisions"
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    group_id: str = "tact-webhook"
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0
    max_concurrency: int = 32
    max_pending: int = 10_000
    commit_interval_s: float = 1.0
    shutdown_grace_s: float = 10.0
    from_beginning: bool = False  # a new consumer group starts at the oldest decision kept
    channels: frozenset[str] | None = None  # deliver only these channels (None: all)
    kafka: TactSettings = field(default_factory=TactSettings, repr=False)

    def __post_init__(self) -> None:
        scheme = redact(self.url).split(":")[0]  # redact() is "<invalid url>" if unparsable
        if scheme not in {"http", "https"} or not httpx.URL(self.url).host:
            raise WebhookError(f"webhook URL must be http(s)://host/...: {redact(self.url)!r}")
        if not self.secret.get_secret_value():
            raise WebhookError("webhook secret is empty (set TACT_WEBHOOK_SECRET)")
        if min(self.max_attempts, self.max_concurrency, self.max_pending) < 1:
            raise WebhookError("max_attempts, max_concurrency and max_pending must be >= 1")
        if min(self.backoff_initial_s, self.backoff_max_s, self.timeout_s) <= 0:
            raise WebhookError("backoff and timeout settings must be positive")

    @classmethod
    def from_settings(cls, settings: TactSettings, **overrides: Any) -> DeliveryConfig:
        """From ``TACT_WEBHOOK_*`` and the Kafka settings; ``overrides`` win (e.g. ``url``)."""
        url = overrides.pop("url", None) or settings.webhook_url
        if not url:
            raise WebhookError("no webhook URL: set TACT_WEBHOOK_URL or pass --url")
        if settings.webhook_secret is None:
            raise WebhookError("no webhook secret: set TACT_WEBHOOK_SECRET")
        base: dict[str, Any] = {
            "kafka": settings,
            "topic": settings.decisions_topic,
            "max_attempts": settings.webhook_max_attempts,
        }
        return cls(url=url, secret=settings.webhook_secret, **(base | overrides))


@dataclass(slots=True)
class DeliveryStats:
    """Counters since start; ``retries`` counts attempts after the first."""

    delivered: int = 0
    retries: int = 0
    dead_lettered: int = 0
    skipped: int = 0


def redact(url: str) -> str:
    """A URL safe to log: no user info, query or fragment (they may hold credentials)."""
    try:
        u = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid url>"
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.host}{port}{u.path}"


@dataclass(slots=True)
class _Partition:
    """One partition's offsets in flight; the commit point is the lowest one not yet done."""

    pending: set[int] = field(default_factory=set)
    next: int | None = None  # one past the highest offset seen
    committed: int | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def commit_point(self) -> int | None:
        return min(self.pending) if self.pending else self.next


@dataclass(frozen=True, slots=True)
class _Failure:
    error: str
    retriable: bool
    status: int | None = None
    retry_after: float | None = None


def _due(decision: Decision) -> float:
    when = decision.deliver_after
    return 0.0 if when is None else (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class WebhookDeliverer:
    """Consume decisions and deliver the sent ones; :meth:`run` until :meth:`stop`."""

    def __init__(self, config: DeliveryConfig) -> None:
        self.config = config
        self.stats = DeliveryStats()
        self._http: httpx.AsyncClient | None = None
        self._parts: dict[TopicPartition, _Partition] = {}
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._paused = False
        self._deferred: set[asyncio.Task[Any]] = set()  # waiting for deliver_after
        self._consumer: Any = None
        self._producer: Any = None

    def stop(self) -> None:
        """Ask :meth:`run` to finish: in-flight deliveries get ``shutdown_grace_s`` seconds."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume and deliver until :meth:`stop`; raises WebhookError if Kafka is unreachable."""
        cfg = self.config
        self._consumer = clients.aio_consumer(
            cfg.kafka,
            group_id=cfg.group_id,
            client_id="tact-webhook",
            enable_auto_commit=False,
            auto_offset_reset="earliest" if cfg.from_beginning else "latest",
        )
        self._producer = clients.aio_idempotent_producer(cfg.kafka, client_id="tact-webhook-dlq")
        self._http = httpx.AsyncClient(
            timeout=cfg.timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=cfg.max_concurrency),
        )
        try:
            await self._producer.start()
            self._consumer.subscribe([cfg.topic], listener=_Rebalance(self))
            await self._consumer.start()
            log.info("delivering %s to %s", cfg.topic, redact(cfg.url))
            await self._consume()
        except KafkaError as exc:
            raise WebhookError(f"Kafka at {cfg.kafka.kafka_brokers}: {exc}") from exc
        finally:
            await self._shutdown()
            await self._http.aclose()

    async def _consume(self) -> None:
        last_commit = time.monotonic()
        wait_ms = int(min(self.config.commit_interval_s, 0.5) * 1000)
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(timeout_ms=wait_ms, max_records=500)
            for tp, records in batches.items():
                part = self._parts.setdefault(tp, _Partition())
                for record in records:
                    self._accept(tp, part, record)
            self._backpressure()
            if time.monotonic() - last_commit >= self.config.commit_interval_s:
                await self._commit(self._parts)
                last_commit = time.monotonic()

    def _accept(self, tp: TopicPartition, part: _Partition, record: Any) -> None:
        offset: int = record.offset
        if part.next is not None and offset < part.next:
            return  # already scheduled or done (re-fetched after a rebalance kept the partition)
        part.next = offset + 1
        source = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        try:
            decision = Decision.model_validate_json(record.value or b"")
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            reason = f"invalid decision: {'.'.join(map(str, first['loc']))}: {first['msg']}"
            raw = (record.value or b"")[:10_000].decode("utf-8", "replace")
            payload = {"decision": None, "raw": raw, "error": reason, "attempts": 0}
            self._schedule(part, offset, self._dead_letter(record.key, payload | source))
            return
        if decision.outcome != "sent" or (
            self.config.channels is not None and decision.channel not in self.config.channels
        ):
            self.stats.skipped += 1
            return
        self._schedule(part, offset, self._deliver(decision, source))

    def _schedule(self, part: _Partition, offset: int, work: Coroutine[Any, Any, None]) -> None:
        part.pending.add(offset)
        task = asyncio.create_task(work)
        part.tasks.add(task)

        def finished(task: asyncio.Task[None]) -> None:
            part.tasks.discard(task)
            if task.cancelled():
                return  # stays pending: redelivered by whoever consumes the partition next
            if (exc := task.exception()) is not None:  # a bug: keep the offset uncommitted
                log.error("delivery task failed", exc_info=exc)
                return
            part.pending.discard(offset)

        task.add_done_callback(finished)

    async def _deliver(self, decision: Decision, source: dict[str, Any]) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._deferred.add(me)
        try:  # loop: a timer may fire a hair early, and deliver_after is a promise
            while (delay := _due(decision) - time.time()) > 0:
                await asyncio.sleep(delay)
        finally:
            self._deferred.discard(me)
        body, last = decision.to_json(), self.config.max_attempts
        signed_at = 0
        for attempt in range(1, last + 1):
            # Each attempt signs with a later t than the one before, even within a second:
            # a receiver refusing replays (SignatureVerifier) must not take a retry for one.
            signed_at = max(int(time.time()), signed_at + 1)
            async with self._slots:  # not held while backing off
                failure = await self._attempt(body, decision.id, attempt, signed_at)
            if failure is None:
                self.stats.delivered += 1
                return
            log.warning("decision %s attempt %d failed: %s", decision.id, attempt, failure.error)
            if not failure.retriable or attempt == last:
                break
            self.stats.retries += 1
            await asyncio.sleep(self._backoff(attempt, failure.retry_after))
        assert failure is not None
        payload = {
            "decision": orjson.Fragment(body),
            "error": failure.error,
            "status": failure.status,
            "attempts": attempt,
            "endpoint": redact(self.config.url),
        }
        await self._dead_letter(decision.customer.encode(), payload | source)

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter: a random delay in [d/2, d], d doubling per retry."""
        cfg = self.config
        ceiling = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** (retry - 1))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.backoff_max_s))
        return delay

    async def _attempt(
        self, body: bytes, decision_id: str, attempt: int, signed_at: int
    ) -> _Failure | None:
        assert self._http is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tact-webhook/1",
            "Idempotency-Key": decision_id,
            "X-Tact-Attempt": str(attempt),
            SIGNATURE_HEADER: signature_header(self.config.secret, body, signed_at,
                                               idempotency_key=decision_id),
        }
        try:
            response = await self._http.post(self.config.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            return _Failure(f"timeout ({type(exc).__name__})", retriable=True)
        except httpx.TransportError as exc:
            return _Failure(f"connection error ({type(exc).__name__}: {exc})", retriable=True)
        except Exception as exc:  # not an HTTP failure (a bug): dead-letter, do not retry
            log.exception("decision %s: unexpected delivery error", decision_id)
            return _Failure(f"internal error: {type(exc).__name__}", retriable=False)
        status = response.status_code
        if 200 <= status < 300:
            return None
        retry_after: float | None = None
        with contextlib.suppress(ValueError):
            retry_after = float(response.headers.get("Retry-After", ""))
        snippet = response.text[:200].strip()
        return _Failure(
            f"HTTP {status}" + (f": {snippet}" if snippet else ""),
            retriable=status >= 500 or status in _RETRIABLE_STATUS,
            status=status,
            retry_after=retry_after,
        )

    async def _dead_letter(self, key: bytes | None, payload: dict[str, Any]) -> None:
        """Write to the dead-letter topic, retrying until Kafka takes it (or we are cancelled)."""
        payload["failed_at"] = datetime.now(UTC).isoformat()
        value = orjson.dumps(payload)
        delay = self.config.backoff_initial_s
        while True:
            try:
                await self._producer.send_and_wait(self.config.dead_letter_topic, value, key=key)
                break
            except KafkaError as exc:
                log.error("dead-letter write failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.backoff_max_s)
        self.stats.dead_lettered += 1
        log.error("dead-lettered: %s", payload["error"])

    def _backpressure(self) -> None:
        pending, limit = sum(len(p.pending) for p in self._parts.values()), self.config.max_pending
        pause = pending >= limit or (self._paused and pending > limit // 2)
        if pause:  # every time: also pauses partitions assigned meanwhile
            self._consumer.pause(*self._consumer.assignment())
        elif self._paused:
            self._consumer.resume(*self._consumer.assignment())
        if pause != self._paused:
            log.warning(
                "%d decisions pending: %s intake", pending, "pausing" if pause else "resuming"
            )
        self._paused = pause

    async def _commit(self, parts: Mapping[TopicPartition, _Partition]) -> None:
        points = {tp: part.commit_point() for tp, part in parts.items()}
        offsets = {tp: p for tp, p in points.items() if p is not None and p != parts[tp].committed}
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("offset commit failed (retried at the next interval): %s", exc)
            return
        for tp, point in offsets.items():
            parts[tp].committed = point

    async def _shutdown(self) -> None:
        await _cancel(self._deferred)  # not due yet: redelivered after a restart
        tasks = [task for part in self._parts.values() for task in part.tasks]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.config.shutdown_grace_s)
            await _cancel(late)
        with contextlib.suppress(Exception):  # best effort: uncommitted work is redone
            await self._commit(self._parts)
        await self._consumer.stop()
        await self._producer.stop()
        self._parts.clear()
        log.info("webhook delivery stopped: %s", self.stats)


async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc,unused-ignore]
    """Commit what is safe before a rebalance; after it, cancel the work of partitions lost."""

    def __init__(self, deliverer: WebhookDeliverer) -> None:
        self._d = deliverer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._d._commit({tp: self._d._parts[tp] for tp in revoked if tp in self._d._parts})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        for tp in [tp for tp in self._d._parts if tp not in set(assigned)]:
            await _cancel(self._d._parts.pop(tp).tasks)
