"""``tact run --processes N``: the host's metrics and JSON views combine its workers'.

The multiprocess test runs two real processes writing their metrics the way the children
do (``PROMETHEUS_MULTIPROC_DIR``) and reads them as the supervisor does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from engine.worker.host_merge import merge_dashboards, merge_stats

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from engine.observability.metrics import Metrics
from engine.observability.counts import BatchCounts
m = Metrics()
m.set_pack("p", sys.argv[2], ["a"])
m.count(BatchCounts.of(event_types=["a"] * int(sys.argv[1])))
m.batch_size.observe(int(sys.argv[1]))
m.set_lag({int(p): 7 for p in sys.argv[3].split(",")})
m.set_lag({int(sys.argv[3].split(",")[-1]): 5})  # a rebalance took the others away
print("ok")
"""


def _child(directory: Path, events: int, version: str, partitions: str) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", CHILD, str(events), version, partitions],
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def _samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples}


def test_two_processes_add_up_and_a_lost_partition_stops_counting(tmp_path: Path) -> None:
    _child(tmp_path, 30, "v1", "0,1")
    _child(tmp_path, 12, "v1", "2")
    got = _samples(tmp_path)
    assert got[("tact_events_in_total", (("type", "a"),))] == 42
    assert got[("tact_batch_size_count", ())] == 2
    assert got[("tact_batch_size_sum", ())] == 42
    assert got[("tact_batch_size_bucket", (("le", "50.0"),))] == 2
    assert got[("tact_batch_size_bucket", (("le", "25.0"),))] == 1
    lag = {dict(k[1])["partition"]: v for k, v in got.items() if k[0] == "tact_consumer_lag"
           and v}
    # partition 0 went to another process: its last value (7) must not stay in the sum
    assert lag == {"1": 5, "2": 5}
    assert got[("tact_rules_info", (("pack", "p"), ("version", "v1")))] == 1


def test_a_dead_process_keeps_its_counts_and_loses_its_gauges(tmp_path: Path) -> None:
    _child(tmp_path, 30, "v1", "0")
    pid = int(next(tmp_path.glob("counter_*.db")).stem.split("_")[-1])
    mark_process_dead(pid, str(tmp_path))
    got = _samples(tmp_path)
    assert got[("tact_events_in_total", (("type", "a"),))] == 30
    assert not [k for k in got if k[0] == "tact_consumer_lag"]


def test_stats_add_counts_and_summaries() -> None:
    a = {"events_in": {"x": 2}, "duplicates": 1, "decisions": [
        {"outcome": "sent", "rule": "r", "count": 3}], "batches": 2, "rules_version": "v1",
        "batch_size": {"count": 2, "sum": 10.0, "max": 8.0, "last": 2.0, "mean": 5.0}}
    b = {"events_in": {"x": 1, "y": 4}, "duplicates": 0, "decisions": [
        {"outcome": "sent", "rule": "r", "count": 1},
        {"outcome": "suppressed", "rule": "r", "count": 2}], "batches": 1,
        "rules_version": "v1",
        "batch_size": {"count": 1, "sum": 5.0, "max": 5.0, "last": 5.0, "mean": 5.0}}
    got = merge_stats([a, b])
    assert got["events_in"] == {"x": 3, "y": 4}
    assert got["duplicates"] == 1 and got["batches"] == 3 and got["workers"] == 2
    assert got["decisions"] == [{"outcome": "sent", "rule": "r", "count": 4},
                                {"outcome": "suppressed", "rule": "r", "count": 2}]
    assert got["batch_size"] == {"count": 3, "sum": 15.0, "max": 8.0, "last": 5.0,
                                 "mean": 5.0}
    assert got["rules_version"] == "v1"
    assert merge_stats([a, {**b, "rules_version": "v2"}])["rules_version"] == "v1,v2"


def test_dashboards_add_per_second_and_take_the_slowest_latency() -> None:
    a = {"now": 100, "series": [[98, 5, 1, 2, 0], [99, 4, 0, 1, 1]], "events_per_s": 4.5,
         "latency_ms": {"p50": 3.0, "p99": 9.0, "samples": 10},
         "top_rules": [{"rule": "r", "sent": 1, "suppressed": 3}], "reasons": {"cap": 3},
         "dead_letters": {"json": 1}, "rules_version": "v1", "pack": "p", "reloads": 0,
         "reloads_by_result": {}, "lag": {"0": 3}, "lag_total": 3, "pending_followups": 1,
         "events_total": 9, "decisions_total": 4, "dead_letters_total": 1,
         "campaigns": [{"run": "R", "campaign": "c", "sent": 1, "suppressed": 0}],
         "kpis": {"k": 1}}
    b = {**a, "now": 101, "series": [[99, 6, 2, 0, 0], [100, 1, 0, 0, 0]],
         "events_per_s": 3.0, "latency_ms": {"p50": 5.0, "p99": 7.0, "samples": 4},
         "lag": {"1": 2, "2": 1}, "lag_total": 3, "reasons": {"cap": 1, "quiet": 2},
         "campaigns": [{"run": "R", "campaign": "c", "sent": 2, "suppressed": 1}]}
    got = merge_dashboards([a, b])
    assert got["series"] == [[98, 5, 1, 2, 0], [99, 10, 2, 1, 1], [100, 1, 0, 0, 0]]
    assert got["events_per_s"] == 7.5 and got["now"] == 101
    assert got["latency_ms"] == {"p50": 5.0, "p99": 9.0, "samples": 14}
    assert got["lag"] == {"0": 3, "1": 2, "2": 1} and got["lag_total"] == 6
    assert got["events_total"] == 18 and got["pending_followups"] == 2
    assert got["reasons"] == {"cap": 4, "quiet": 2}
    assert got["top_rules"] == [{"rule": "r", "sent": 2, "suppressed": 6}]
    assert got["campaigns"] == [{"run": "R", "campaign": "c", "sent": 3, "suppressed": 1}]
    assert got["kpis"] == {"k": 1} and got["workers"] == 2
