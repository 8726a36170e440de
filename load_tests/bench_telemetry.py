"""What counting one batch for operators costs: the worker's telemetry against the naive way.

The worker counts each committed batch once (``BatchCounts``) and increments one Prometheus
child per distinct label set. The baseline, measured in the same run on the same batch, is
what a first version does: ``labels(...).inc()`` and a stats update per decision and per
event. Prints the medians and the ratio.

    PYTHONPATH=. .venv/bin/python -m load_tests.bench_telemetry [--events 2000] [--rules 200]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from engine.models.decision import Decision, decision_id
from engine.observability.counts import BatchCounts
from engine.observability.metrics import Metrics
from engine.worker.process import Processed
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import Telemetry

REASONS = ["no_consent", "cooldown", "frequency_cap", "quiet_hours", "lower_priority", "stale"]


def batch(events: int, rules: int, per_event: float, seed: int = 1) -> tuple[
        list[str], list[Decision], list[int]]:
    """Event types, decisions (a rule always sends its own message) and Kafka timestamps."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    types = [f"type_{rng.randrange(20)}" for _ in range(events)]
    decisions = []
    for i in range(int(events * per_event)):
        rule = f"rule_{rng.randrange(rules)}"
        sent = rng.random() < 0.25
        decisions.append(Decision(
            id=decision_id(f"e{i}", rule, "email"), event_id=f"e{i}", customer=f"c{i}",
            rule=rule, message=f"msg_{rule}", template="t", category="promotion",
            channel=rng.choice(["email", "push", "sms"]),
            outcome="sent" if sent else "suppressed",
            reasons=[] if sent else rng.sample(REASONS, 2), decided_at=now))
    stamp = int(time.time() * 1000)
    return types, decisions, [stamp - rng.randrange(100) for _ in range(events)]


def naive(metrics: Metrics, stats: WorkerStats, types: list[str], decisions: list[Decision],
          stamps: list[int]) -> None:
    """The baseline: one labels().inc() per event and per decision, every latency observed."""
    for t in types:
        metrics.events_in.labels(metrics.event_type(t)).inc()
        stats.events_in[t] += 1
    for d in decisions:
        metrics.decisions.labels(d.outcome, d.rule, d.message, d.channel).inc()
        stats.decisions[(d.outcome, d.rule)] += 1
        if d.outcome == "suppressed":
            for r in d.reasons:
                metrics.suppressions.labels(r).inc()
                stats.suppressed_reasons[r] += 1
    done = time.time()
    for ts in stamps:
        metrics.end_to_end.observe(done - ts / 1000)


def median_ms(fn: Callable[[], None], repeat: int) -> float:
    fn()  # warm: label children created
    times = []
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2000, help="events per batch")
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--decisions-per-event", type=float, default=2.3)
    ap.add_argument("--repeat", type=int, default=30)
    a = ap.parse_args()
    types, decisions, stamps = batch(a.events, a.rules, a.decisions_per_event)

    naive_m, naive_s = Metrics(), WorkerStats()
    stats = WorkerStats()
    tele = Telemetry(stats)

    def current() -> None:
        counts = BatchCounts.of(event_types=types, decisions=decisions)
        stats.events_in.update(counts.events)
        stats.count(counts)
        tele.batch_committed(Processed(records=[], counts=counts), size=len(types),
                             seconds=0.1, produced_ms=stamps)

    rounds = [(median_ms(lambda: naive(naive_m, naive_s, types, decisions, stamps), a.repeat),
               median_ms(current, a.repeat)) for _ in range(3)]
    base = statistics.median(r[0] for r in rounds)
    ours = statistics.median(r[1] for r in rounds)
    print(f"batch: {len(types):,} events, {len(decisions):,} decisions, {a.rules} rules")
    print(f"baseline (per-decision labels().inc()): {base:8.2f} ms per batch "
          f"({base * 1000 / len(types):.2f} us/event)")
    print(f"tact telemetry (counted per batch):     {ours:8.2f} ms per batch "
          f"({ours * 1000 / len(types):.2f} us/event)")
    print(f"ratio baseline/tact: {base / ours:.1f}x (medians of 3 alternating rounds of "
          f"{a.repeat})")


if __name__ == "__main__":
    main()
