"""The ratios and goals of the load test's last JSON line, and the latency-to-visibility
join: pure functions, no services."""

from __future__ import annotations

import pytest

from load_tests.baselines import stat_cpu_ticks
from load_tests.goals import GOALS, Figures, goals, ratio, ratios, summary
from load_tests.visibility import latency_stats, visibility_latencies

A = Figures(max_eps=40_000, events_per_cpu_second=20_000, visible_p50_ms=10.0,
            visible_p99_ms=40.0)
B = Figures(max_eps=800, events_per_cpu_second=900, visible_p50_ms=200.0,
            visible_p99_ms=900.0)


def test_ratio_is_c_over_baseline_and_none_when_missing() -> None:
    assert ratio(6_000, 40_000) == 0.15
    assert ratio(0, 40_000) == 0.0
    assert ratio(None, 40_000) is None
    assert ratio(6_000, None) is None
    assert ratio(6_000, 0) is None


def test_ratios_of_throughput_cpu_and_latency() -> None:
    c = Figures(max_eps=10_000, events_per_cpu_second=5_000, visible_p50_ms=25.0,
                visible_p99_ms=80.0)
    r = ratios({"a": A, "b": B, "c": c})
    assert r["c_over_a"] == 0.25
    assert r["c_over_b"] == 12.5
    assert r["cpu_c_over_a"] == 0.25
    assert r["p50_c_over_a"] == 2.5
    assert r["p99_c_over_a"] == 2.0
    assert (r["c/a"], r["c/b"]) == (r["c_over_a"], r["c_over_b"])  # the old keys


def test_goals_report_target_measured_and_met_for_each() -> None:
    c = Figures(max_eps=20_000, events_per_cpu_second=6_000, visible_p50_ms=20.0,
                visible_p99_ms=61.0)
    g = goals({"a": A, "b": B, "c": c}, round_trips_per_batch=2.0)
    assert set(g) == {goal.key for goal in GOALS}
    assert g["c_over_a"] == {"target": 0.5, "op": ">=", "measured": 0.5, "met": True,
                             "about": g["c_over_a"]["about"]}
    assert (g["c_over_b"]["measured"], g["c_over_b"]["met"]) == (25.0, True)
    assert (g["cpu_c_over_a"]["measured"], g["cpu_c_over_a"]["met"]) == (0.3, True)
    assert (g["p50_c_over_a"]["measured"], g["p50_c_over_a"]["met"]) == (2.0, True)
    assert (g["p99_c_over_a"]["measured"], g["p99_c_over_a"]["met"]) == (1.525, False)
    assert (g["c_eps"]["met"], g["c_p50_ms"]["met"], g["c_p99_ms"]["met"]) == (
        False, False, False)
    assert g["round_trips_per_batch"]["met"] is True


def test_goals_not_measured_are_none_not_failed() -> None:
    g = goals({"c": Figures(max_eps=60_000)})
    assert g["c_eps"]["met"] is True
    for key in ("c_over_a", "c_over_b", "cpu_c_over_a", "p50_c_over_a", "p99_c_over_a",
                "round_trips_per_batch"):
        assert (g[key]["measured"], g[key]["met"]) == (None, None)


def test_figures_read_visibility_latency_not_append_latency() -> None:
    steady = {"events_per_cpu_second": 7_000, "latency_ms": {"p50": 11.0, "p99": 38.0},
              "visible_latency_ms": {"p50": 22.0, "p99": 63.0}}
    f = Figures.of({"throughput_eps": 9_000, "events_per_cpu_second": 3_000}, steady)
    assert f == Figures(max_eps=9_000, events_per_cpu_second=3_000,
                        steady_events_per_cpu_second=7_000, visible_p50_ms=22.0,
                        visible_p99_ms=63.0)


def test_visibility_latency_joins_by_event_id_and_skips_others() -> None:
    events = {"e1": 1_000, "e2": 1_010, "e3": 1_020}
    received = {"e1": 1_022.5, "e3": 1_083.0, "warm-up-1": 900.0}
    assert sorted(visibility_latencies(events, received)) == [22.5, 63.0]


def test_latency_stats_nearest_rank() -> None:
    s = latency_stats(float(v) for v in range(1, 101))
    assert (s["p50"], s["p95"], s["p99"], s["max"], s["mean"]) == (50, 95, 99, 100, 50.5)
    assert latency_stats([]) == {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}


@pytest.mark.parametrize("comm", ["python", "tact run", "we(i)rd) name"])
def test_stat_cpu_ticks_counts_the_process_and_its_waited_children(comm: str) -> None:
    # pid (comm) state ppid ... utime stime cutime cstime (fields 14-17) ...
    rest = " ".join(["S", "41"] + ["0"] * 9 + ["300", "50", "20", "5"] + ["0"] * 30)
    assert stat_cpu_ticks(f"42 ({comm}) {rest}") == (41, 375)


def test_summary_line_carries_ratios_goals_and_both_latencies() -> None:
    def run(eps: float, cpu: float, p50: float, p99: float) -> dict[str, object]:
        return {"throughput_eps": eps, "events_per_cpu_second": cpu,
                "latency_ms": {"p50": p50 / 2, "p99": p99 / 2},
                "visible_latency_ms": {"p50": p50, "p99": p99}}
    results = {"max": {"a": run(40_000, 30_000, 0, 0), "c": run(8_000, 3_000, 0, 0)},
               "steady": {"a": run(5_000, 20_000, 10, 40), "c": run(5_000, 11_000, 30, 50)}}
    line = summary("r1", results, {"rate": 5000})
    assert line["ratios"]["c_over_a"] == 0.2
    assert line["ratios"]["cpu_c_over_a"] == 0.1  # max mode: both flat out
    assert line["ratios"]["cpu_steady_c_over_a"] == 0.55
    assert line["goals"]["cpu_c_over_a"]["met"] is False
    assert (line["ratios"]["p50_c_over_a"], line["ratios"]["p99_c_over_a"]) == (3.0, 1.25)
    assert line["ratios"]["c_over_b"] is None
    assert line["goals"]["p99_c_over_a"]["met"] is True
    assert line["c"]["visible_latency_ms"] == {"p50": 30, "p99": 50}
    assert line["c"]["latency_ms"] == {"p50": 15.0, "p99": 25.0}
    assert line["config"] == {"rate": 5000}
