"""Simulation and replay in embedded mode: event files in, decisions and differences out.

Event time drives everything, so the same file and pack always give the same decisions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from engine.embedded import Engine
from engine.errors import EventValidationError
from engine.models.decision import Decision
from engine.models.event import Envelope, parse_event
from engine.pack.model import RulePack
from engine.pipeline import RuleFault

BATCH = 500


@dataclass
class DeadLetter:
    line: int
    reason: str


@dataclass
class Simulation:
    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0
    faults: list[RuleFault] = field(default_factory=list)  # what raised; each failed closed

    def summary(self) -> dict[str, Counter[str]]:
        by_rule: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for d in self.decisions:
            by_rule[f"{d.rule}:{d.outcome}"] += 1
            outcomes[d.outcome] += 1
            reasons.update(d.reasons)
        faults = Counter(f.rule for f in self.faults)  # as tact_rule_faults_total{rule}
        return {"rules": by_rule, "reasons": reasons, "outcomes": outcomes, "faults": faults}


def read_events(path: str | Path) -> Iterator[tuple[int, Envelope | DeadLetter]]:
    """JSON lines of wire events. A line may also be {"event": {...}, "received": ISO}."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield n, DeadLetter(n, f"invalid JSON: {exc}")
                continue
            try:
                yield n, _envelope(obj)
            except EventValidationError as exc:
                yield n, DeadLetter(n, exc.reason)


def _envelope(obj: Any) -> Envelope:
    if isinstance(obj, dict) and "event" in obj and isinstance(obj["event"], dict):
        ev = parse_event(obj["event"])
        rec = obj.get("received")
        if rec is None:
            return Envelope.at_event_time(ev)
        from datetime import datetime

        try:
            when = datetime.fromisoformat(str(rec))
        except ValueError:
            raise EventValidationError(f"received: not an ISO time: {rec!r}") from None
        if when.tzinfo is None:
            raise EventValidationError("received: needs an offset")
        return Envelope(ev, when.timestamp())
    if not isinstance(obj, dict):
        raise EventValidationError("<event>: expected a JSON object")
    return Envelope.at_event_time(parse_event(obj))


async def simulate_async(
    pack: RulePack,
    source: Iterator[tuple[int, Envelope | DeadLetter]],
    *,
    until: float | None = None,
    trace: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Simulation:
    engine = Engine(pack, trace=trace)
    sim = Simulation()
    chunk: list[Envelope] = []
    clock = float("-inf")

    async def flush() -> None:
        nonlocal clock
        if not chunk:
            return
        first = chunk[0].event.at.timestamp()
        if first > clock:
            clock = first
            ticked = await engine.tick(clock)
            sim.decisions.extend(ticked.fired)
            sim.faults.extend(ticked.faults)
        res = await engine.process(chunk)
        sim.decisions.extend(res.decisions)
        sim.duplicates += sum(1 for o in res.outcomes if o.status == "duplicate")
        sim.faults.extend(res.faults)
        clock = max(clock, max(e.event.at.timestamp() for e in chunk))
        if progress:
            progress(len(chunk))
        chunk.clear()

    for _, item in source:
        if isinstance(item, DeadLetter):
            sim.dead_letters.append(item)
            continue
        sim.events += 1
        chunk.append(item)
        if len(chunk) >= BATCH:
            await flush()
    await flush()
    end = until if until is not None else clock
    if end > float("-inf"):
        ticked = await engine.tick(end)
        sim.decisions.extend(ticked.fired)
        sim.faults.extend(ticked.faults)
    return sim


def simulate(pack: RulePack, path: str | Path, **kw: Any) -> Simulation:
    return asyncio.run(simulate_async(pack, read_events(path), **kw))


@dataclass
class Change:
    key: str  # decision id
    kind: str  # "added", "removed", "changed"
    before: Decision | None
    after: Decision | None
    what: list[str] = field(default_factory=list)


def diff_decisions(before: list[Decision], after: list[Decision]) -> list[Change]:
    """Per-decision differences between two runs over the same events."""
    a = {d.id: d for d in before}
    b = {d.id: d for d in after}
    out: list[Change] = []
    for k, d in a.items():
        other = b.get(k)
        if other is None:
            out.append(Change(k, "removed", d, None))
            continue
        what = []
        if d.outcome != other.outcome:
            what.append(f"outcome {d.outcome} -> {other.outcome}")
        if sorted(d.reasons) != sorted(other.reasons):
            what.append(f"reasons {d.reasons} -> {other.reasons}")
        if d.params != other.params:
            what.append(f"params {d.params} -> {other.params}")
        if d.deliver_after != other.deliver_after:
            what.append("deliver_after changed")
        if what:
            out.append(Change(k, "changed", d, other, what))
    out.extend(Change(k, "added", None, d) for k, d in b.items() if k not in a)
    return out
