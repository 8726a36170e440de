"""The event wire format, and the envelope the engine wraps around it on receipt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import from_json

from engine.errors import EventValidationError
from engine.models.limits import AtWindow, EventBounds, check_data

# Identifiers travel in Kafka keys, Redis keys and logs: keep them printable and bounded.
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,199}$"
_TYPE = r"^[a-z][a-z0-9_]{0,63}$"

NOT_AN_OBJECT = "<event>: expected a JSON object"


class InvalidJSONError(EventValidationError):
    """The input is not JSON at all (as opposed to JSON of the wrong shape).

    ``detail`` is the parser's message, e.g. ``expected value at line 1 column 1``.
    """

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"json: not valid JSON ({detail})")


class Event(BaseModel):
    """A customer event as published by backend services (JSON on the wire)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="Producer-assigned id; used for dedupe.")
    customer: str = Field(pattern=_ID, description="Customer id; the Kafka key.")
    type: str = Field(pattern=_TYPE, description="Event type, e.g. app_open.")
    at: AwareDatetime = Field(description="When it happened: ISO 8601 with an offset.")
    data: dict[str, Any] = Field(default_factory=dict, description="Type-specific payload.")

    @property
    def ts(self) -> float:
        """Event time as epoch seconds."""
        return self.at.timestamp()


@dataclass(slots=True)
class Envelope:
    """An event plus what the engine learns on receipt (never on the wire)."""

    event: Event
    received: float  # epoch seconds

    @classmethod
    def at_event_time(cls, event: Event) -> Envelope:
        return cls(event, event.at.timestamp())


def loads_json(raw: bytes | str) -> Any:
    """Parse JSON text the way every path does; raises :class:`InvalidJSONError`.

    The parser is the one pydantic validates JSON with, so that a record parses alike here
    and in :func:`parse_event`'s fast path (integers of any size stay integers, to be
    refused by the limits rather than silently rounded to floats).
    """
    try:
        return from_json(raw)
    except ValueError as exc:
        raise InvalidJSONError(str(exc)) from None


def parse_event(raw: bytes | str | Mapping[str, Any], window: AtWindow | None = None) -> Event:
    """Validate one event from JSON bytes/str or a mapping; raises EventValidationError.

    Beyond the model, the event must keep the bounds of :mod:`engine.models.limits`; ``at``
    is checked against ``window`` (default: the default bounds at the wall clock). The
    reason for a refusal is the same whichever form the event came in.
    """
    if window is None:
        window = EventBounds().window()
    if isinstance(raw, Mapping):
        return event_from_value(raw, window)
    try:
        event = Event.model_validate_json(raw)  # the fast path, for the worker
    except ValidationError:
        # The reference is the parsed value's validation: same reason as from a mapping.
        return event_from_value(loads_json(raw), window)
    _check_limits(event, window)
    return event


def event_from_value(value: object, window: AtWindow) -> Event:
    """Validate one event from a parsed JSON value (or a mapping from Python code)."""
    if not isinstance(value, Mapping):
        raise EventValidationError(NOT_AN_OBJECT)
    try:
        event = Event.model_validate(value if isinstance(value, dict) else dict(value))
    except ValidationError as exc:
        raise EventValidationError(_summarise(exc)) from None
    _check_limits(event, window)
    return event


def _check_limits(event: Event, window: AtWindow) -> None:
    window.check(event.at)
    if event.data:
        check_data(event.data)


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<event>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def iso(ts: float, tz: Any = None) -> str:
    """Epoch seconds to ISO 8601 with offset (UTC unless a tzinfo is given)."""
    from datetime import UTC

    return datetime.fromtimestamp(ts, tz or UTC).isoformat()
