"""The worker's telemetry: a committed batch counted into the metrics and the live window,
the read gauges refreshed, and the dashboard's JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from engine.models.decision import Decision, decision_id
from engine.observability.counts import BatchCounts
from engine.observability.live import LiveStats
from engine.pack.loader import load_pack
from engine.worker.process import Processed
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import LATENCY_SAMPLE, Telemetry

RULES = Path(__file__).resolve().parents[2] / "rules"


def _decision(rule: str, outcome: str, reasons: list[str]) -> Decision:
    return Decision(id=decision_id("e", rule, "email"), event_id="e", customer="c-1", rule=rule,
                    message="m", template="m", category="service", channel="email",
                    outcome=outcome, reasons=reasons,  # type: ignore[arg-type]
                    decided_at=datetime.now(UTC))


def _values(t: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(t.render_metrics().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_committed_batch_is_counted_once_everywhere() -> None:
    now = [1_000_000.0]
    stats = WorkerStats()
    t = Telemetry(stats, live=LiveStats(clock=lambda: now[0]))
    t.set_pack(load_pack(RULES))
    processed = Processed(records=[], counts=BatchCounts.of(
        decisions=[_decision("order_shipped", "sent", []),
                   _decision("flash_sale", "suppressed", ["no_consent", "quiet_hours"])],
        event_types=["order_shipped", "order_shipped", "not_in_the_pack"],
        dead=["json"], duplicates=1, faults=["flash_sale"]))
    produced = [int((now[0] - 0.010) * 1000), int((now[0] - 0.030) * 1000), -1]
    t.batch_committed(processed, size=4, seconds=0.004, produced_ms=produced, done=now[0])

    v = _values(t)
    assert v[("tact_events_in_total", (("type", "order_shipped"),))] == 2
    assert v[("tact_events_in_total", (("type", "other"),))] == 1  # bounded labels
    assert v[("tact_decisions_total", (("channel", "email"), ("message", "m"),
                                       ("outcome", "sent"), ("rule", "order_shipped")))] == 1
    assert v[("tact_suppressions_total", (("reason", "quiet_hours"),))] == 1
    assert v[("tact_dead_letters_total", (("reason", "json"),))] == 1
    assert v[("tact_duplicate_events_total", ())] == 1
    assert v[("tact_rule_faults_total", (("rule", "flash_sale"),))] == 1
    assert v[("tact_batch_size_sum", ())] == 4
    assert v[("tact_processing_seconds_sum", ())] == 0.004
    # two events had a producer timestamp: 10 ms and 30 ms before the commit
    assert v[("tact_end_to_end_seconds_count", ())] == 2
    assert abs(v[("tact_end_to_end_seconds_sum", ())] - 0.040) < 0.002

    now[0] += 1  # the dashboard shows whole seconds
    dash = t.dashboard(window_s=5)
    assert dash["series"][-1][1:] == [3, 1, 1, 1]  # events, sent, suppressed, dead
    assert dash["reasons"] == {"no_consent": 1, "quiet_hours": 1}
    assert dash["dead_letters"] == {"json": 1}
    assert 10 <= dash["latency_ms"]["p50"] <= 30


def test_latencies_are_sampled_evenly_per_batch() -> None:
    t = Telemetry(WorkerStats())
    # the first third of the batch is 1 s old, the rest 0.1 s: the sample must see both
    produced = [1_000] * LATENCY_SAMPLE + [1_900] * (LATENCY_SAMPLE * 2)
    t.batch_committed(Processed(records=[]), size=len(produced), seconds=0.1,
                      produced_ms=produced, done=2.0)
    v = _values(t)
    assert v[("tact_end_to_end_seconds_count", ())] == LATENCY_SAMPLE
    assert abs(v[("tact_end_to_end_seconds_sum", ())] - LATENCY_SAMPLE * 0.4) < 1


def test_refresh_sets_read_gauges_and_counts_reloads_as_deltas() -> None:
    stats = WorkerStats()
    t = Telemetry(stats)
    pack = load_pack(RULES)
    stats.rules_version = pack.version
    stats.reloads["ok"] += 2
    t.refresh(pack=pack, lag={0: 5, 2: 0}, pending_followups=7)
    stats.reloads["ok"] += 1
    stats.reloads["rejected"] += 1
    t.refresh(pack=pack, lag={0: 1}, pending_followups=3)
    t.refresh(pack=pack)  # nothing new: nothing counted again

    v = _values(t)
    assert v[("tact_rule_reloads_total", (("result", "ok"),))] == 3
    assert v[("tact_rule_reloads_total", (("result", "rejected"),))] == 1
    assert v[("tact_consumer_lag", (("partition", "0"),))] == 1
    assert ("tact_consumer_lag", (("partition", "2"),)) not in v  # revoked: dropped
    assert v[("tact_pending_followups", ())] == 3
    assert v[("tact_rules_info", (("pack", pack.name), ("version", pack.version)))] == 1

    dash = t.dashboard()
    assert dash["rules_version"] == pack.version and dash["pack"] == pack.name
    assert dash["reloads"] == 4 and dash["reloads_by_result"] == {"ok": 3, "rejected": 1}
    assert dash["lag"] == {"0": 1} and dash["lag_total"] == 1
    assert dash["pending_followups"] == 3


def test_redis_calls_are_timed_by_operation() -> None:
    t = Telemetry(WorkerStats())
    t.redis_call("load", 0.001)
    t.redis_call("load", 0.003)
    t.redis_call("save", 0.002)
    v = _values(t)
    assert v[("tact_redis_call_seconds_count", (("op", "load"),))] == 2
    assert v[("tact_redis_call_seconds_count", (("op", "save"),))] == 1
