"""``POST /events``: authenticated HTTP ingest of single events or batches, all-or-nothing.

The core, :class:`IngestHandler`, knows nothing of a web framework: it takes the raw body and
the ``Authorization`` header and returns ``(status, json body)``. It hands valid events to an
injected ``send(events)`` coroutine (:func:`kafka_sender` builds one that produces to Kafka
keyed by customer). :func:`make_aiohttp_view` adapts it to aiohttp, which Faust's web runs on.

Responses (JSON):

* 202 ``{"accepted": n, "ids": [...]}`` -- every event was valid and handed to ``send``.
* 400 ``{"error": ..., "errors": [{"index": i, "reason": ...}, ...]}`` -- malformed JSON, a
  body that is neither an object nor an array, an empty array, or at least one invalid event
  (the model, or the bounds of :mod:`engine.models.limits`: ``at`` in range, 64-bit integers,
  finite floats, nesting and size of ``data``; the reasons are the worker's dead-letter
  reasons). Nothing of the request is sent (all-or-nothing): a client fixes and retries.
* 401 -- no or a wrong ``Authorization: Bearer <TACT_API_TOKEN>``.
* 403 -- ingest disabled: no (or a blank) token configured, as for every token-guarded
  endpoint of the worker.
* 413 -- body larger than ``max_body_bytes`` or more than ``max_batch`` events.
* 503 -- ``send`` failed; safe to retry as is:
  the engine deduplicates events by id.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import SecretStr

from engine.config import TactSettings
from engine.errors import EventValidationError
from engine.models.event import Event, InvalidJSONError, event_from_value, loads_json
from engine.models.limits import AtWindow, EventBounds

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "IngestHandler",
    "Sender",
    "kafka_sender",
    "make_aiohttp_view",
    "mount",
]

log = logging.getLogger("tact.ingest")

Sender = Callable[[Sequence[Event]], Awaitable[None]]
Response = tuple[int, dict[str, Any]]

DEFAULT_MAX_BATCH = 1000
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def bearer_matches(auth_header: str | None, token: bytes) -> bool:
    """Whether ``Authorization: Bearer <token>`` carries ``token``."""
    if not auth_header:
        return False
    scheme, _, credentials = auth_header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Constant-time: the time taken does not reveal how much of the token matched.
    return hmac.compare_digest(credentials.strip().encode(), token)


def _error(status: int, message: str, **extra: Any) -> Response:
    return status, {"error": message, **extra}


class IngestHandler:
    """Authenticate, parse, validate and forward events; see the module docstring for replies.

    ``token`` is the bearer token clients must present. ``None`` or a blank one disables
    ingest (403) unless ``allow_anonymous=True``, meant for local development only. ``bounds``
    limits ``at`` (:meth:`from_settings`: from ``TACT_EVENT_*``); ``clock`` is for tests.
    """

    def __init__(
        self,
        send: Sender,
        *,
        token: SecretStr | str | None,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        allow_anonymous: bool = False,
        bounds: EventBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_batch < 1 or max_body_bytes < 1:
            raise ValueError("max_batch and max_body_bytes must be positive")
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._token = secret.encode() if secret and secret.strip() else None
        self._send = send
        self._anonymous = allow_anonymous
        self.max_batch = max_batch
        self.max_body_bytes = max_body_bytes
        self.bounds = bounds or EventBounds()
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: TactSettings, send: Sender, **options: Any) -> IngestHandler:
        """A handler guarded by ``TACT_API_TOKEN``, events bounded by ``TACT_EVENT_*``."""
        options.setdefault("bounds", EventBounds.from_settings(settings))
        return cls(send, token=settings.api_token, **options)

    def authorised(self, auth_header: str | None) -> bool:
        """Whether the ``Authorization`` header carries the right bearer token."""
        if self._token is None:
            return self._anonymous
        return bearer_matches(auth_header, self._token)

    async def handle(self, body: bytes, auth_header: str | None) -> Response:
        """Process one ``POST /events`` request; returns ``(HTTP status, JSON-able body)``."""
        if self._token is None and not self._anonymous:
            return _error(403, "ingest disabled: the server has no API token (TACT_API_TOKEN)")
        if not self.authorised(auth_header):
            return _error(401, "missing or invalid bearer token")
        if len(body) > self.max_body_bytes:
            return _error(413, f"body over {self.max_body_bytes} bytes", limit=self.max_body_bytes)
        try:
            payload = loads_json(body)
        except InvalidJSONError as exc:
            return _error(400, f"body is not valid JSON: {exc.detail}")
        if isinstance(payload, dict):
            items: list[Any] = [payload]
        elif isinstance(payload, list):
            items = payload
        else:
            return _error(400, "body must be an event object or an array of events")
        if not items:
            return _error(400, "empty batch: send at least one event")
        if len(items) > self.max_batch:
            return _error(413, f"batch of {len(items)} events over the limit", limit=self.max_batch)
        events, errors = self._validate(items, self.bounds.window(self._clock()))
        if errors:
            return _error(
                400,
                f"{len(errors)} of {len(items)} event(s) invalid; none accepted",
                errors=errors,
            )
        try:
            await self._send(events)
        except Exception:
            log.exception("ingest: handing %d event(s) to the event log failed", len(events))
            return _error(503, "events not accepted: the event log is unavailable; retry")
        return 202, {"accepted": len(events), "ids": [e.id for e in events]}

    @staticmethod
    def _validate(
        items: list[Any], window: AtWindow
    ) -> tuple[list[Event], list[dict[str, Any]]]:
        events: list[Event] = []
        errors: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            try:
                events.append(event_from_value(item, window))
            except EventValidationError as exc:
                errors.append({"index": index, "reason": exc.reason})
        return events, errors


def kafka_sender(producer: Any, topic: str) -> Sender:
    """A ``send`` for :class:`IngestHandler` over a started aiokafka ``AIOKafkaProducer``.

    Same wire format as the publisher: key = customer id, value = the event's compact JSON.
    Returns once Kafka acknowledged every event of the request (per the producer's ``acks``).
    """
    from connectors.kafka.publisher import encode_event

    async def send(events: Sequence[Event]) -> None:
        acks = [
            await producer.send(topic, encode_event(e), key=e.customer.encode()) for e in events
        ]
        await asyncio.gather(*acks)

    return send


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def make_aiohttp_view(
    handler: IngestHandler,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp request handler for ``POST /events`` backed by ``handler``.

    It reads the body itself with the handler's limit (not the app's ``client_max_size``), so
    an oversized request gets the handler's 413 JSON reply.
    """

    async def view(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        if not handler.authorised(auth):  # refuse before reading a large body
            status, body = await handler.handle(b"", auth)
        else:
            raw = await _read_limited(request, handler.max_body_bytes)
            if raw is None:
                status, body = _error(
                    413,
                    f"body over {handler.max_body_bytes} bytes",
                    limit=handler.max_body_bytes,
                )
            else:
                status, body = await handler.handle(raw, auth)
        headers = {"WWW-Authenticate": 'Bearer realm="tact"'} if status == 401 else None
        return web.Response(
            status=status,
            body=orjson.dumps(body),
            content_type="application/json",
            headers=headers,
        )

    return view


def mount(app: web.Application, handler: IngestHandler, path: str = "/events") -> None:
    """Add ``POST path`` to an aiohttp application (call before the app starts serving).

    For Faust: ``mount(faust_app.web.web_app, handler)``.
    """
    app.router.add_post(path, make_aiohttp_view(handler))
