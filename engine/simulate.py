"""Simulation and replay in embedded mode: event files in, decisions and differences out.

Event time drives everything, so the same file and pack always give the same decisions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from engine.embedded import Engine
from engine.errors import EventValidationError
from engine.models.decision import DecisionRecord
from engine.models.event import Envelope, parse_event
from engine.pack.model import RulePack
from engine.pipeline import RuleFault
from engine.scenarios.seeds import StartingState
from engine.state.memory import MemoryStateStore

BATCH = 500


@dataclass
class DeadLetter:
    line: int
    reason: str


@dataclass
class Simulation:
    decisions: list[DecisionRecord] = field(default_factory=list)
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
    state: StartingState | None = None,
) -> Simulation:
    """Run ``source`` through ``pack``. ``state`` gives customers' starting states; its
    relative times count from the first event's time. Raises ScenarioError for a starting
    state the pack cannot take."""
    store = MemoryStateStore()
    engine = Engine(pack, store, trace=trace)
    sim = Simulation()
    chunk: list[Envelope] = []
    clock = float("-inf")
    unseeded = state

    def seed(start: float | None) -> None:
        nonlocal unseeded
        if unseeded is not None:
            for st in unseeded.states(pack, start):
                store.seed(st)
            unseeded = None

    async def flush() -> None:
        nonlocal clock
        if not chunk:
            return
        first = chunk[0].event.at.timestamp()
        seed(first)
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
    seed(until)  # no events: relative times count from --until, if given
    end = until if until is not None else clock
    if end > float("-inf"):
        ticked = await engine.tick(end)
        sim.decisions.extend(ticked.fired)
        sim.faults.extend(ticked.faults)
    return sim


def simulate(pack: RulePack, path: str | Path, **kw: Any) -> Simulation:
    return asyncio.run(simulate_async(pack, read_events(path), **kw))


# The fields of a decision a replay compares (its id already fixes event, rule and channel;
# priority, rules_version and trace describe the pack, not what the customer gets).
COMPARED = (
    "outcome", "reasons", "params", "deliver_after", "decided_at", "message", "template",
    "category",
)  # fmt: skip


@dataclass
class Change:
    key: str  # decision id
    kind: str  # "added", "removed", "changed"
    before: DecisionRecord | None
    after: DecisionRecord | None
    what: list[str] = field(default_factory=list)
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (before, after)

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON-ready data (the shape is documented in :func:`replay_report`)."""
        d = self.after or self.before
        if d is None:  # a change always holds at least one side
            raise ValueError(f"change {self.key} has no decision")
        return {
            "kind": self.kind,
            "id": self.key,
            "event_id": d.event_id,
            "customer": d.customer,
            "rule": d.rule,
            "channel": d.channel,
            "fields": {k: {"before": b, "after": a} for k, (b, a) in self.fields.items()},
            "before": _plain(self.before),
            "after": _plain(self.after),
        }


def _plain(d: DecisionRecord | None) -> dict[str, Any] | None:
    if d is None:
        return None
    out: dict[str, Any] = orjson.loads(d.to_json())
    out.pop("trace", None)
    return out


def diff_decisions(before: list[DecisionRecord], after: list[DecisionRecord]) -> list[Change]:
    """Per-decision differences between two runs over the same events."""
    a = {d.id: d for d in before}
    b = {d.id: d for d in after}
    out: list[Change] = []
    for k, d in a.items():
        other = b.get(k)
        if other is None:
            out.append(Change(k, "removed", d, None))
            continue
        fields: dict[str, tuple[Any, Any]] = {}
        for name in COMPARED:
            was, now = getattr(d, name), getattr(other, name)
            same = sorted(was) == sorted(now) if name == "reasons" else was == now
            if not same:
                fields[name] = (was, now)
        if fields:
            out.append(Change(k, "changed", d, other, _describe(fields), fields))
    out.extend(Change(k, "added", None, d) for k, d in b.items() if k not in a)
    return out


def _describe(fields: dict[str, tuple[Any, Any]]) -> list[str]:
    out = []
    for name, (was, now) in fields.items():
        if name in ("deliver_after", "decided_at"):
            out.append(f"{name} {_iso(was)} -> {_iso(now)}")
        else:
            out.append(f"{name} {was} -> {now}")
    return out


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when is not None else "none"


def replay_report(
    before: RulePack, after: RulePack, sims: tuple[Simulation, Simulation], changes: list[Change]
) -> dict[str, Any]:
    """The machine-readable diff of ``tact replay --format json``::

        {"format": "tact-replay/1",
         "events": <events read>,
         "before": {"pack": name, "version": v, "decisions": n},   # --rules
         "after":  {"pack": name, "version": v, "decisions": n},   # --compare
         "counts": {"changed": n, "added": n, "removed": n},
         "changes": [{"kind": "changed" | "added" | "removed",
                      "id": decision id, "event_id", "customer", "rule", "channel",
                      "fields": {name: {"before": v, "after": v}},  # "changed" only
                      "before": decision | null, "after": decision | null}]}

    A decision is the JSON a worker publishes, without its trace. Every change is listed.
    """
    counts = Counter(c.kind for c in changes)
    return {
        "format": "tact-replay/1",
        "events": sims[0].events,
        "before": _side(before, sims[0]),
        "after": _side(after, sims[1]),
        "counts": {k: counts.get(k, 0) for k in ("changed", "added", "removed")},
        "changes": [c.to_dict() for c in changes],
    }


def _side(pack: RulePack, sim: Simulation) -> dict[str, Any]:
    return {"pack": pack.name, "version": pack.version, "decisions": len(sim.decisions)}
