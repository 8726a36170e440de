"""A rolling, per-second view of the last minutes, for the live dashboard.

Prometheus answers "how much in total"; the dashboard needs "what happened in the last few
minutes" with no Prometheus at hand. This keeps one slot per second (a ring) and a bounded
sample of latencies per slot, so memory stays fixed whatever the traffic.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.observability.counts import BatchCounts

SLOTS = 300  # five minutes of one-second slots
SAMPLES_PER_SLOT = 256


@dataclass
class _Slot:
    second: int = -1
    events: int = 0
    sent: int = 0
    suppressed: int = 0
    dead: int = 0
    latencies: list[float] = field(default_factory=list)
    seen: int = 0  # latencies offered, for reservoir sampling

    def reset(self, second: int) -> None:
        self.second = second
        self.events = self.sent = self.suppressed = self.dead = self.seen = 0
        self.latencies.clear()


class LiveStats:
    def __init__(self, clock: Callable[[], float] = time.time, seed: int = 0) -> None:
        self._clock = clock
        self._slots = [_Slot() for _ in range(SLOTS)]
        self._rng = random.Random(seed)
        self.rules: Counter[tuple[str, str]] = Counter()  # (rule, outcome)
        self.reasons: Counter[str] = Counter()
        self.dead_letters: Counter[str] = Counter()

    def _slot(self) -> _Slot:
        now = int(self._clock())
        slot = self._slots[now % SLOTS]
        if slot.second != now:
            slot.reset(now)
        return slot

    def record(self, batch: BatchCounts | None = None, *,
               latencies: Iterable[float] = ()) -> None:
        """Count one committed batch in the current second."""
        slot = self._slot()
        if batch is not None:
            slot.events += batch.event_count
            for (outcome, rule, _m, _c), n in batch.decisions.items():
                self.rules[(rule, outcome)] += n
                if outcome == "sent":
                    slot.sent += n
                else:
                    slot.suppressed += n
            self.reasons.update(batch.reasons)
            slot.dead += sum(batch.dead.values())
            self.dead_letters.update(batch.dead)
        for value in latencies:
            slot.seen += 1
            if len(slot.latencies) < SAMPLES_PER_SLOT:
                slot.latencies.append(value)
            else:  # reservoir sampling keeps an unbiased sample of the second
                j = self._rng.randrange(slot.seen)
                if j < SAMPLES_PER_SLOT:
                    slot.latencies[j] = value

    def snapshot(self, window_s: int = 120) -> dict[str, Any]:
        now = int(self._clock())
        series = []
        samples: list[float] = []
        # whole seconds only: the current one is still filling, and would show as a drop
        for second in range(now - window_s, now):
            slot = self._slots[second % SLOTS]
            live = slot.second == second
            series.append([second, slot.events if live else 0, slot.sent if live else 0,
                           slot.suppressed if live else 0, slot.dead if live else 0])
            if live and second >= now - 60:
                samples.extend(slot.latencies)
        recent = series[-10:]
        rate = sum(s[1] for s in recent) / len(recent) if recent else 0.0
        top: Counter[str] = Counter()
        for (rule, _outcome), n in self.rules.items():
            top[rule] += n
        return {
            "now": now,
            "series": series,
            "events_per_s": round(rate, 1),
            "latency_ms": {"p50": _pct(samples, 0.50), "p99": _pct(samples, 0.99),
                           "samples": len(samples)},
            "top_rules": [
                {"rule": r, "sent": self.rules[(r, "sent")],
                 "suppressed": self.rules[(r, "suppressed")]}
                for r, _ in top.most_common(10)
            ],
            "reasons": dict(self.reasons.most_common(12)),
            "dead_letters": dict(self.dead_letters),
        }


def _pct(values: list[float], q: float) -> float | None:
    """A percentile in milliseconds (``q`` in hundredths: 0.5, 0.99)."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[round(q * 100) - 1] * 1000, 2)
