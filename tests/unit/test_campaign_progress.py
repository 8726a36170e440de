"""A campaign run's progress in the worker's metrics and on the live dashboard."""

from __future__ import annotations

from engine.campaigns.fanout import DONE, Progress
from engine.models.decision import Decision
from engine.observability.counts import BatchCounts
from engine.worker.stats import WorkerStats
from engine.worker.telemetry import Telemetry


def _runs() -> list[Progress]:  # newest first, as the checkpoints list them
    return [
        Progress("weekend_gold@20261204T090000Z", "weekend_gold", 2.0, 2.0, {0: 40, 1: DONE},
                 scanned=300, emitted=300),
        Progress("weekend_gold@20261127T090000Z", "weekend_gold", 1.0, 1.0, {0: DONE, 1: DONE},
                 scanned=900, emitted=910, finished=1.5),
        Progress("dropped@20261127T090000Z", "dropped", 1.0, 1.0, {}, finished=1.2),
    ]


def test_the_latest_run_of_each_campaign_of_the_pack_is_a_gauge() -> None:
    t = Telemetry(WorkerStats())
    t.set_campaign_runs(_runs(), ["weekend_gold"])
    text = t.render_metrics().decode()
    assert 'tact_campaign_customers{campaign="weekend_gold",stage="scanned"} 300.0' in text
    assert 'tact_campaign_customers{campaign="weekend_gold",stage="emitted"} 300.0' in text
    assert 'tact_campaign_running{campaign="weekend_gold"} 1.0' in text
    assert 'campaign="dropped"' not in text  # no longer in the pack: no label


def test_the_dashboard_lists_the_runs_with_what_was_decided() -> None:
    t = Telemetry(WorkerStats())
    decision = Decision.model_validate({
        "id": "d-1", "event_id": "e", "customer": "c", "rule": "weekend_gold",
        "message": "weekend", "template": "weekend", "category": "promotion", "channel": "push",
        "outcome": "sent", "reasons": [],
        "decided_at": "2026-11-27T09:00:00+00:00", "rules_version": "v"})
    t.live.record(BatchCounts.of(decisions=[decision]))
    t.set_campaign_runs(_runs(), ["weekend_gold"])
    runs = t.dashboard()["campaigns"]
    assert [(r["run"], r["state"], r["scanned"], r["partitions_done"]) for r in runs] == [
        ("weekend_gold@20261204T090000Z", "running", 300, 1),
        ("weekend_gold@20261127T090000Z", "done", 900, 2),
        ("dropped@20261127T090000Z", "done", 0, 0)]
    assert (runs[0]["sent"], runs[0]["suppressed"]) == (1, 0)
