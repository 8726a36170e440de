"""Metrics and the live dashboard's rolling window, without a worker."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.models.decision import Decision, decision_id
from engine.observability.counts import BatchCounts
from engine.observability.live import LiveStats
from engine.observability.metrics import Metrics


def _decision(outcome: str, reasons: list[str]) -> Decision:
    return Decision(id=decision_id("e", "r", "push"), event_id="e", customer="c", rule="r",
                    message="m", template="m", category="promotion", channel="push",
                    outcome=outcome, reasons=reasons, decided_at=datetime.now(UTC))  # type: ignore[arg-type]


def test_metrics_are_prefixed_and_bounded() -> None:
    m = Metrics()
    m.set_pack("p", "abc", ["app_open"])
    m.count_events(["app_open", "app_open", "made_up_type"])
    m.count_decisions([_decision("sent", []), _decision("suppressed", ["cooldown", "stale"])])
    text = m.render().decode()
    assert 'tact_events_in_total{type="app_open"} 2.0' in text
    assert 'tact_events_in_total{type="other"} 1.0' in text
    assert 'tact_suppressions_total{reason="cooldown"} 1.0' in text
    assert 'tact_rules_info{pack="p",version="abc"} 1.0' in text
    names = [line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")]
    assert names and all(n.startswith("tact_") for n in names)


def test_live_stats_window() -> None:
    now = [1000.0]
    live = LiveStats(clock=lambda: now[0])
    live.record(BatchCounts.of(event_types=["a"] * 10,
                               decisions=[_decision("sent", []),
                                          _decision("suppressed", ["cooldown"])],
                               dead=["schema"]), latencies=[0.001, 0.002, 0.003])
    now[0] += 1
    live.record(BatchCounts.of(event_types=["a"] * 5))
    # the second still filling is left out: it would show as a drop at the chart's edge
    assert live.snapshot(window_s=10)["series"][-1][1] == 10
    now[0] += 1
    snap = live.snapshot(window_s=10)
    assert snap["series"][-1][1] == 5 and snap["series"][-2][1] == 10
    assert snap["series"][-1][0] == int(now[0]) - 1
    assert snap["top_rules"] == [{"rule": "r", "sent": 1, "suppressed": 1}]
    assert snap["reasons"] == {"cooldown": 1} and snap["dead_letters"] == {"schema": 1}
    assert snap["latency_ms"]["p50"] == 2.0
    now[0] += 400  # older than the ring: gone
    assert sum(s[1] for s in live.snapshot()["series"]) == 0
