"""A testing kit for rule authors and for Tact's own tests: source, sink and a fake clock.

    from engine.testing import Harness
    h = Harness.from_text(RULES_YAML)          # or Harness(load_pack("rules"))
    h.customer("c-1", attributes={"tz": "Europe/Rome"}, consent={"push": True})
    decisions = h.emit("c-1", "app_open")       # at the fake clock's time
    fired = h.advance("30m")                     # follow-ups due by then fire
    assert h.sink.sent_messages() == ["welcome"]

Everything runs in embedded mode with the in-memory store; time is event time.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.dsl.durations import parse_duration
from engine.embedded import Engine
from engine.models.decision import Decision
from engine.models.event import Envelope, Event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack_text
from engine.pack.model import RulePack
from engine.pipeline import BatchResult
from engine.state.memory import MemoryStateStore


class FakeClock:
    """Event time under the test's control."""

    def __init__(self, start: datetime | str = "2026-01-01T12:00:00+00:00") -> None:
        self.now = datetime.fromisoformat(start) if isinstance(start, str) else start
        if self.now.tzinfo is None:
            raise ValueError("the clock needs a time zone offset")

    def advance(self, by: str | float | timedelta) -> datetime:
        secs = by.total_seconds() if isinstance(by, timedelta) else parse_duration(by)
        self.now = self.now + timedelta(seconds=secs)
        return self.now

    def set(self, when: datetime | str) -> datetime:
        self.now = datetime.fromisoformat(when) if isinstance(when, str) else when
        return self.now

    @property
    def ts(self) -> float:
        return self.now.timestamp()


class EventSource:
    """Makes valid events with unique ids, stamped by the clock."""

    def __init__(self, clock: FakeClock, prefix: str = "ev") -> None:
        self.clock = clock
        self.prefix = prefix
        self._ids = itertools.count(1)

    def event(
        self,
        customer: str,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        at: datetime | None = None,
    ) -> Event:
        return Event(
            id=id or f"{self.prefix}-{next(self._ids)}",
            customer=customer,
            type=type,
            at=at or self.clock.now,
            data=data or {},
        )

    def envelope(self, event: Event, *, late_by: str | float | None = None) -> Envelope:
        received = event.at.timestamp() + (parse_duration(late_by) if late_by else 0.0)
        return Envelope(event, received)


@dataclass
class DecisionSink:
    """Collects decisions, with the questions tests usually ask of them."""

    decisions: list[Decision] = field(default_factory=list)

    def extend(self, decisions: list[Decision]) -> None:
        self.decisions.extend(decisions)

    def sent(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "sent"]

    def suppressed(self) -> list[Decision]:
        return [d for d in self.decisions if d.outcome == "suppressed"]

    def sent_messages(self) -> list[str]:
        return [d.message for d in self.sent()]

    def reasons(self, message: str) -> list[str]:
        return [r for d in self.suppressed() if d.message == message for r in d.reasons]

    def clear(self) -> None:
        self.decisions.clear()


class Harness:
    """A pack, an in-memory store, a fake clock, a source and a sink, wired together."""

    def __init__(
        self, pack: RulePack, *, start: str = "2026-01-01T12:00:00+00:00", trace: bool = False
    ) -> None:
        self.pack = pack
        self.store = MemoryStateStore()
        self.engine = Engine(pack, self.store, trace=trace)
        self.clock = FakeClock(start)
        self.source = EventSource(self.clock)
        self.sink = DecisionSink()
        self.last: BatchResult | None = None
        self._loop = asyncio.new_event_loop()

    @classmethod
    def from_text(cls, yaml_text: str, **kw: Any) -> Harness:
        return cls(load_pack_text(yaml_text), **kw)

    def close(self) -> None:
        self._loop.close()

    def customer(
        self,
        customer: str,
        *,
        attributes: dict[str, Any] | None = None,
        consent: dict[str, bool] | None = None,
    ) -> None:
        self.store.seed(
            CustomerState(customer, attributes=dict(attributes or {}), consent=dict(consent or {}))
        )

    def state(self, customer: str) -> CustomerState:
        return self._loop.run_until_complete(self.store.load([customer]))[customer]

    def emit(
        self,
        customer: str,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        id: str | None = None,
        late_by: str | float | None = None,
    ) -> list[Decision]:
        """One event at the clock's time; returns this event's decisions (and due follow-ups)."""
        env = self.source.envelope(self.source.event(customer, type, data, id=id), late_by=late_by)
        return self.process([env])

    def process(self, batch: list[Envelope]) -> list[Decision]:
        self.last = self._loop.run_until_complete(self.engine.process(batch))
        decisions = [d.public() for d in self.last.decisions]
        self.sink.extend(decisions)
        return decisions

    def advance(self, by: str | float | timedelta) -> list[Decision]:
        """Move the clock; follow-ups due by then fire and are returned."""
        self.clock.advance(by)
        result = self._loop.run_until_complete(self.engine.tick(self.clock.ts))
        fired = [d.public() for d in result.fired]
        self.sink.extend(fired)
        return fired


def utc(text: str) -> datetime:
    """Shorthand for an aware datetime in tests: utc('2026-01-01T12:00')."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
