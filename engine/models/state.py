"""Per-customer state: what the engine knows about one customer between events.

The hot path works on plain slotted dataclasses; msgpack carries them between the
engine and the store as compact lists (``to_wire``/``from_wire``). Times are epoch seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

WIRE_VERSION = 1


@dataclass(slots=True)
class SentRecord:
    """One message that went out (or was deferred): the basis of caps and cooldowns."""

    message: str
    channel: str
    category: str
    at: float


@dataclass(slots=True)
class PendingFollowup:
    """A follow-up waiting for its time, unless a cancelling event comes first."""

    rule: str
    due: float
    event: dict[str, Any]  # the trigger event's expression view, frozen at schedule time


@dataclass(slots=True)
class CustomerState:
    customer: str
    version: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    consent: dict[str, bool] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    windows: dict[str, list[float]] = field(default_factory=dict)
    timestamps: dict[str, float] = field(default_factory=dict)
    contexts: dict[str, float] = field(default_factory=dict)  # name -> expires at
    history: list[SentRecord] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)  # event id -> event time (dedupe)
    followups: list[PendingFollowup] = field(default_factory=list)
    last_event: float = 0.0

    def next_due(self) -> float | None:
        return min((f.due for f in self.followups), default=None)

    # -- wire form (msgpack-friendly: lists and dicts of scalars only) --------------
    def to_wire(self) -> list[Any]:
        return [
            WIRE_VERSION,
            self.customer,
            self.version,
            self.attributes,
            self.consent,
            self.counters,
            self.windows,
            self.timestamps,
            self.contexts,
            [[h.message, h.channel, h.category, h.at] for h in self.history],
            self.seen,
            [[f.rule, f.due, f.event] for f in self.followups],
            self.last_event,
        ]

    @classmethod
    def from_wire(cls, w: list[Any]) -> CustomerState:
        if not w or w[0] != WIRE_VERSION:
            raise ValueError(f"unsupported customer state wire version: {w[:1]!r}")
        return cls(
            customer=w[1],
            version=w[2],
            attributes=w[3],
            consent=w[4],
            counters=w[5],
            windows=w[6],
            timestamps=w[7],
            contexts=w[8],
            history=[SentRecord(*h) for h in w[9]],
            seen=w[10],
            followups=[PendingFollowup(*f) for f in w[11]],
            last_event=w[12],
        )


class CustomerSeed(BaseModel):
    """What is known of a customer up front (scenario files, profile imports)."""

    model_config = ConfigDict(extra="forbid")

    attributes: dict[str, Any] = Field(default_factory=dict)
    consent: dict[str, bool] = Field(default_factory=dict)

    def to_state(self, customer: str) -> CustomerState:
        return CustomerState(
            customer=customer, attributes=dict(self.attributes), consent=dict(self.consent)
        )
