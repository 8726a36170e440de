"""Publish customer events to Kafka from a backend service (kafka-python, synchronous, thread-safe).

Every event is validated with the engine's own model and bounds
(:func:`engine.models.event.parse_event`, :mod:`engine.models.limits`) before it is sent,
keyed by its customer id (so one customer's events stay in order on one partition) and
written as compact JSON with ``at`` in ISO 8601::

    with Publisher("127.0.0.1:9092") as pub:
        pub.publish({"id": "e1", "customer": "c42", "type": "app_open",
                     "at": "2024-05-01T09:30:00+02:00"})

Sends are asynchronous: :meth:`Publisher.publish` returns once the event is queued; broker
failures surface at the latest from :meth:`Publisher.flush` / :meth:`Publisher.close` (or at once
with ``wait=True``) as a :class:`PublishError`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from connectors.kafka import clients
from engine.config import TactSettings
from engine.errors import EventValidationError, TactError
from engine.models.event import Event, event_from_value, parse_event
from engine.models.limits import AtWindow, EventBounds

__all__ = [
    "FileReport",
    "InvalidEventsError",
    "PublishError",
    "Publisher",
    "encode_event",
    "publish_file",
    "read_jsonl",
    "validate",
]

RawEvent = Event | Mapping[str, Any] | bytes | str


class PublishError(TactError):
    """Kafka could not be reached or did not acknowledge one or more events.

    ``failed`` counts the events known not to have been written (0 when the producer could
    not even be created); ``event_ids`` lists some of them.
    """

    def __init__(self, message: str, failed: int = 0, event_ids: Iterable[str] = ()) -> None:
        self.failed = failed
        self.event_ids = list(event_ids)
        super().__init__(message)


class InvalidEventsError(EventValidationError):
    """Some events of a batch are invalid; nothing of the batch was sent.

    ``errors`` holds ``(index, reason)`` pairs, the index 0-based within the batch.
    """

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        shown = "; ".join(f"#{i}: {reason}" for i, reason in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} invalid event(s), none sent: {shown}{more}")


def validate(raw: RawEvent, window: AtWindow | None = None) -> Event:
    """Validate one event (a model, a mapping, or JSON bytes/str); raises EventValidationError.

    A ready :class:`Event` is validated again from its fields, so a ``model_construct``-ed or
    otherwise unchecked instance cannot slip through. ``window`` bounds ``at`` (default: the
    default bounds at the wall clock); the worker refuses exactly what this refuses.
    """
    if window is None:
        window = EventBounds().window()
    if isinstance(raw, Event):
        return event_from_value(raw.model_dump(), window)
    if isinstance(raw, Mapping):
        return event_from_value(raw, window)
    return parse_event(raw, window)


def encode_event(event: Event) -> bytes:
    """The wire form of a validated event: compact JSON, ``at`` as ISO 8601 with its offset."""
    try:
        return orjson.dumps(event.model_dump(mode="json"))
    except (TypeError, ValueError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise EventValidationError(f"data: not JSON-serialisable: {exc}") from None


class Publisher:
    """A validating, customer-keyed Kafka producer for events. Safe to share between threads.

    ``target`` is a :class:`TactSettings` (brokers, events topic and SASL/SSL from it) or a
    bootstrap string such as ``"host1:9092,host2:9092"`` (plaintext, :func:`clients.plaintext`);
    ``None`` reads the settings from the environment. ``producer_options`` override kafka-python's
    ``KafkaProducer`` arguments (e.g. ``compression_type="gzip"``). ``bounds`` limits ``at``
    (default: from the settings' ``TACT_EVENT_*``, or the defaults for a bootstrap string).
    """

    def __init__(
        self,
        target: TactSettings | str | None = None,
        topic: str | None = None,
        *,
        client_id: str = "tact-publisher",
        linger_ms: int = 5,
        batch_size: int = 64 * 1024,
        max_block_ms: int = 30_000,
        bounds: EventBounds | None = None,
        **producer_options: Any,
    ) -> None:
        from kafka.errors import KafkaError

        if target is None:
            target = TactSettings()
        if isinstance(target, TactSettings):
            settings = target
            bounds = bounds or EventBounds.from_settings(target)
        else:  # a bare address: the default bounds, not the environment's
            settings = clients.plaintext(target)
        self.topic = topic or settings.events_topic
        self.bounds = bounds or EventBounds()
        options: dict[str, Any] = {
            "client_id": client_id,
            "acks": "all",  # every in-sync replica has it before we call it sent
            "enable_idempotence": True,  # broker drops duplicates from our own retries
            "linger_ms": linger_ms,
            "batch_size": batch_size,
            "max_block_ms": max_block_ms,
            **producer_options,
        }
        self._lock = threading.Lock()
        self._failures: list[tuple[str, str]] = []  # (event id, error)
        self.sent = 0  # queued successfully (acknowledged once flush() returns cleanly)
        try:
            self._producer = clients.producer(settings, **options)
        except KafkaError as exc:
            raise PublishError(
                f"cannot connect to Kafka at {settings.kafka_brokers}: {exc}"
            ) from exc

    def publish(self, event: RawEvent, *, wait: bool = False, timeout: float = 30.0) -> Event:
        """Validate and send one event; returns the validated event.

        Raises :class:`~engine.errors.EventValidationError` (nothing sent) if it is invalid and
        :class:`PublishError` if it cannot be queued or, with ``wait=True``, is not acknowledged
        within ``timeout`` seconds.
        """
        valid = validate(event, self.bounds.window())
        self._send(valid, encode_event(valid), wait, timeout)
        return valid

    def publish_many(self, events: Iterable[RawEvent]) -> list[Event]:
        """Validate a batch, then send it all, or raise :class:`InvalidEventsError` sending none.

        The batch is held in memory; for a stream where bad items should be skipped, call
        :meth:`publish` per item (as :func:`publish_file` does).
        """
        valid: list[tuple[Event, bytes]] = []
        errors: list[tuple[int, str]] = []
        window = self.bounds.window()
        for index, raw in enumerate(events):
            try:
                event = validate(raw, window)
                valid.append((event, encode_event(event)))
            except EventValidationError as exc:
                errors.append((index, exc.reason))
        if errors:
            raise InvalidEventsError(errors)
        for event, value in valid:
            self._send(event, value, False, 0.0)
        return [event for event, _ in valid]

    def _send(self, event: Event, value: bytes, wait: bool, timeout: float) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(self.topic, key=event.customer.encode(), value=value)
        except KafkaError as exc:
            raise PublishError(f"event {event.id} not queued: {exc}", 1, [event.id]) from exc
        if wait:
            try:
                future.get(timeout=timeout)
            except KafkaError as exc:
                raise PublishError(f"event {event.id} not written: {exc}", 1, [event.id]) from exc
        else:
            future.add_errback(self._failed, event.id)
        with self._lock:
            self.sent += 1

    def _failed(self, event_id: str, exc: BaseException) -> None:
        with self._lock:
            self.sent -= 1
            self._failures.append((event_id, f"{type(exc).__name__}: {exc}"))

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued event is acknowledged; raise :class:`PublishError` if some
        were not (since the last flush). Failures are reported once, then forgotten."""
        from kafka.errors import KafkaError

        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as exc:
            raise PublishError(f"flush did not complete: {exc}") from exc
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            ids = [event_id for event_id, _ in failures]
            raise PublishError(
                f"{len(failures)} event(s) not written to {self.topic}; first: "
                f"{failures[0][0]}: {failures[0][1]}",
                len(failures),
                ids[:100],
            )

    def close(self, timeout: float | None = None) -> None:
        """Flush (raising :class:`PublishError` on failures), then release the connections."""
        try:
            self.flush(timeout)
        finally:
            self._producer.close(timeout=timeout)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:  # do not mask the original error with a flush failure
            with suppress(PublishError):
                self.close()


@dataclass(slots=True)
class FileReport:
    """What :func:`publish_file` did: events sent and ``(line number, reason)`` of bad lines."""

    sent: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad


def read_jsonl(
    stream: IO[bytes], bounds: EventBounds | None = None
) -> Iterator[tuple[int, Event | EventValidationError]]:
    """Yield ``(1-based line number, event or its validation error)``; blank lines skipped."""
    bounds = bounds or EventBounds()
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line, bounds.window())
        except EventValidationError as exc:
            yield number, exc


def publish_file(publisher: Publisher, path: Path | str, *, strict: bool = False) -> FileReport:
    """Send the events of a JSON Lines file (one event per line; ``-`` reads stdin).

    Default: every valid line is sent and the bad ones reported. ``strict=True``: the whole file
    is validated first and nothing is sent if any line is bad (the file is read twice, so it
    must not be stdin). Ends with a flush, so a clean return means Kafka acknowledged them all.
    """
    report = FileReport()
    if strict:
        if str(path) == "-":
            raise TactError("--strict needs a file, not stdin (it reads the input twice)")
        with Path(path).open("rb") as stream:
            report.bad = [(n, r.reason) for n, r in read_jsonl(stream, publisher.bounds)
                          if not isinstance(r, Event)]
        if report.bad:
            return report
    with _open(path) as stream:
        for number, result in read_jsonl(stream, publisher.bounds):
            if isinstance(result, Event):
                publisher.publish(result)
                report.sent += 1
            else:
                report.bad.append((number, result.reason))
    publisher.flush()
    return report


@contextmanager
def _open(path: Path | str) -> Iterator[IO[bytes]]:
    """``open(path, "rb")``, or stdin's binary buffer (left open) for ``-``."""
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    with Path(path).open("rb") as stream:
        yield stream
