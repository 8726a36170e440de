"""The event wire format, and the envelope the engine wraps around it on receipt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from engine.errors import EventValidationError

# Identifiers travel in Kafka keys, Redis keys and logs: keep them printable and bounded.
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,199}$"
_TYPE = r"^[a-z][a-z0-9_]{0,63}$"


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


def parse_event(raw: bytes | str | dict[str, Any]) -> Event:
    """Validate one event from JSON bytes/str or a dict, translating pydantic's error."""
    try:
        if isinstance(raw, dict):
            return Event.model_validate(raw)
        return Event.model_validate_json(raw)
    except ValidationError as exc:
        raise EventValidationError(_summarise(exc)) from None


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
