"""Plain counters the worker keeps up to date; a metrics exporter can read them later.

Nothing here talks to Prometheus: :class:`WorkerStats` is a few dicts and numbers, updated
between awaits (one event loop, no locks needed), and :meth:`WorkerStats.snapshot` is a
JSON-ready copy.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from engine.observability.counts import BatchCounts


@dataclass
class Summary:
    """Count, sum and max of an observed quantity (batch size, a latency in seconds)."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0
    last: float = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.last = value
        if value > self.max:
            self.max = value

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "sum": round(self.total, 6), "max": round(self.max, 6),
                "last": round(self.last, 6), "mean": round(self.mean, 6)}


@dataclass
class WorkerStats:
    events_in: Counter[str] = field(default_factory=Counter)  # by event type
    duplicates: int = 0
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (outcome, rule)
    suppressed_reasons: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)  # by kind
    ticks: int = 0
    fired: int = 0  # decisions from follow-ups reached by a tick
    rule_faults: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_size: Summary = field(default_factory=Summary)  # records per batch
    batch_seconds: Summary = field(default_factory=Summary)  # fetch -> offsets committed
    decide_seconds: Summary = field(default_factory=Summary)  # the pipeline alone
    commit_seconds: Summary = field(default_factory=Summary)  # the Kafka transaction
    event_lag_seconds: Summary = field(default_factory=Summary)  # received -> committed
    restores: Counter[str] = field(default_factory=Counter)  # rebuild / catch_up
    restored_states: int = 0  # states copied from the changelog into the store
    retries: Counter[str] = field(default_factory=Counter)  # by error kind
    reloads: Counter[str] = field(default_factory=Counter)  # ok / rejected
    rules_version: str = ""

    def count(self, batch: BatchCounts) -> None:
        """A batch's decisions and suppression reasons (counted once per batch)."""
        for (outcome, rule, _m, _c), n in batch.decisions.items():
            self.decisions[(outcome, rule)] += n
        self.suppressed_reasons.update(batch.reasons)

    def snapshot(self) -> dict[str, Any]:
        return {
            "events_in": dict(self.events_in),
            "duplicates": self.duplicates,
            "decisions": [{"outcome": o, "rule": r, "count": n}
                          for (o, r), n in sorted(self.decisions.items())],
            "suppressed_reasons": dict(self.suppressed_reasons),
            "dead_letters": dict(self.dead_letters),
            "ticks": self.ticks,
            "fired": self.fired,
            "rule_faults": dict(self.rule_faults),
            "batches": self.batches,
            "batch_size": self.batch_size.as_dict(),
            "batch_seconds": self.batch_seconds.as_dict(),
            "decide_seconds": self.decide_seconds.as_dict(),
            "commit_seconds": self.commit_seconds.as_dict(),
            "event_lag_seconds": self.event_lag_seconds.as_dict(),
            "restores": dict(self.restores),
            "restored_states": self.restored_states,
            "retries": dict(self.retries),
            "reloads": dict(self.reloads),
            "rules_version": self.rules_version,
        }
