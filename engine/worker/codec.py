"""Wire formats of the worker: consumed records in, decisions, dead letters and ticks out.

A consumed event record becomes an :class:`~engine.models.event.Envelope` or a
:class:`DeadLetter`. The dead-letter record is JSON (see ``docs/worker.md``)::

    {"reason": "...", "code": "<reason code>", "source": {"topic": ..., "partition": ...,
     "offset": ..., "timestamp_ms": ..., "key": "<utf-8 or null>"},
     "value_b64": "<original bytes>", "worker": "<worker id>"}

keyed like the original record, with the reason also in a ``tact-reason`` header and the
code in ``tact-reason-code``. ``reason`` is for people; ``code`` is one of the codes listed
in ``docs/reasons.md`` (``schema``, ``json``, ``processing_error``, ...). A
``processing_error`` also carries ``error_type``, the exception's class name.

Receive time is the worker's wall clock when the batch was fetched, unless the record carries
a ``tact-received`` header (ISO 8601 with an offset): a replay and testing feature that lets
a replayed or scripted stream reproduce the staleness it had the first time.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from engine.errors import EventValidationError
from engine.models.event import Envelope, InvalidJSONError, parse_event
from engine.models.limits import AtWindow, EventBounds

RECEIVED_HEADER = "tact-received"
REASON_HEADER = "tact-reason"
REASON_CODE_HEADER = "tact-reason-code"
TICK_VERSION = 1

Headers = Sequence[tuple[str, bytes]]


@dataclass(slots=True)
class Source:
    """Where a consumed record came from. One is built per consumed record, so it is not
    frozen: a frozen dataclass sets each field through ``object.__setattr__`` (~4x the cost)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    source: Source
    key: bytes | None
    value: bytes | None
    kind: str = "schema"  # the reason code: empty, json, schema, key, header, processing_error
    error_type: str | None = None  # a processing_error's exception class

    def to_json(self, worker: str = "") -> bytes:
        src = self.source
        extra = {} if self.error_type is None else {"error_type": self.error_type}
        return orjson.dumps({
            "reason": self.reason,
            "code": self.kind,
            **extra,
            "source": {
                "topic": src.topic,
                "partition": src.partition,
                "offset": src.offset,
                "timestamp_ms": src.timestamp_ms,
                "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            },
            "value_b64": None if self.value is None else base64.b64encode(self.value).decode(),
            "worker": worker,
        })

    def headers(self) -> list[tuple[str, bytes]]:
        return [(REASON_HEADER, self.reason.encode("utf-8")[:1000]),
                (REASON_CODE_HEADER, self.kind.encode())]


def header(headers: Headers | None, name: str) -> bytes | None:
    if headers:
        for k, v in headers:
            if k == name:
                return v
    return None


def decode_event(
    key: bytes | None,
    value: bytes | None,
    headers: Headers | None,
    source: Source,
    received: float,
    window: AtWindow | None = None,
) -> Envelope | DeadLetter:
    """Validate one consumed record; anything the engine cannot take is a dead letter.

    ``window`` bounds ``at`` (and the ``tact-received`` header); build it once per batch
    (:meth:`~engine.models.limits.EventBounds.window`). Default: the default bounds at
    ``received``.
    """
    if value is None:
        return DeadLetter("value: empty record (tombstone)", source, key, value, "empty")
    if window is None:
        window = EventBounds().window(received)
    try:
        event = parse_event(value, window)
    except InvalidJSONError as exc:
        return DeadLetter(exc.reason, source, key, value, "json")
    except EventValidationError as exc:
        return DeadLetter(exc.reason, source, key, value, "schema")
    if key is None or key.decode("utf-8", "replace") != event.customer:
        shown = "none" if key is None else repr(key.decode("utf-8", "replace")[:60])
        return DeadLetter(f"key: must be the customer id {event.customer!r}, got {shown}",
                          source, key, value, "key")
    raw = header(headers, RECEIVED_HEADER) if headers else None
    if raw is not None:
        try:
            at = datetime.fromisoformat(raw.decode("ascii"))
            if at.tzinfo is None:
                raise ValueError("no UTC offset")
            window.check(at, f"{RECEIVED_HEADER} header")
        except (ValueError, UnicodeDecodeError) as exc:
            return DeadLetter(f"{RECEIVED_HEADER} header: {exc}", source, key, value, "header")
        except EventValidationError as exc:
            return DeadLetter(exc.reason, source, key, value, "header")
        received = at.timestamp()
    return Envelope(event, received)


# -- decisions --------------------------------------------------------------------------
def decision_headers(rules_version: str) -> list[tuple[str, bytes]]:
    return [("tact-rules-version", rules_version.encode())]


# -- ticks: "the clock of this partition reached <now>" ---------------------------------
def encode_tick(now: float, origin: str = "timer") -> bytes:
    return orjson.dumps({"v": TICK_VERSION, "now": now, "origin": origin})


def decode_tick(value: bytes | None) -> float | None:
    """The tick's clock, or None for a record that is not a tick (it is then skipped)."""
    if not value:
        return None
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != TICK_VERSION:
        return None
    now = data.get("now")
    return float(now) if isinstance(now, int | float) and not isinstance(now, bool) else None
