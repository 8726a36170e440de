"""``compare``'s last JSON line, its ratios and goals (pure: figures in, verdicts out).

Ratios are (c) over a baseline in the same run. Throughput and CPU cost (events per
CPU-second over the process's life, start-up included) come from max mode, where every
system runs flat out: at a steady rate a backlogged (c) works in cheap big batches while
(a) spends CPU polling, which flatters (c) (reported too, ``cpu_steady_c_over_a``). Latency
comes from steady mode and is to visibility: the event's CreateTime to when a
``read_committed`` consumer receives its last output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from load_tests.baselines import NAMES


@dataclass(frozen=True, slots=True)
class Goal:
    """``measured <op> target`` for the figure named ``key``."""

    key: str
    op: str  # ">=" or "<="
    target: float
    about: str

    def check(self, measured: float | None) -> dict[str, Any]:
        met = None if measured is None else (
            measured >= self.target if self.op == ">=" else measured <= self.target)
        return {"target": self.target, "op": self.op, "measured": measured, "met": met,
                "about": self.about}


GOALS = (
    # issue 13, "Half the raw floor"
    Goal("c_over_a", ">=", 0.5, "max-mode throughput, (c) over (a)"),
    Goal("c_over_b", ">=", 25.0, "max-mode throughput, (c) over (b)"),
    Goal("cpu_c_over_a", ">=", 0.3, "max-mode events per CPU-second, (c) over (a)"),
    Goal("p50_c_over_a", "<=", 2.0, "steady p50 latency to visibility, (c) over (a)"),
    Goal("p99_c_over_a", "<=", 1.5, "steady p99 latency to visibility, (c) over (a)"),
    # issue 4, absolute figures of (c)
    Goal("c_eps", ">=", 50_000.0, "max-mode throughput of (c), events/s"),
    Goal("c_p50_ms", "<=", 5.0, "steady p50 latency to visibility of (c), ms"),
    Goal("c_p99_ms", "<=", 20.0, "steady p99 latency to visibility of (c), ms"),
    Goal("round_trips_per_batch", "<=", 2.0, "Redis round trips per batch, batch path"),
)


def ratio(x: float | None, y: float | None) -> float | None:
    """``x / y`` to 3 decimals; None when either is missing or ``y`` is 0."""
    if x is None or not y:
        return None
    return round(x / y, 3)


@dataclass(frozen=True, slots=True)
class Figures:
    """What the goals need of one system (None: not measured in this run)."""

    max_eps: float | None = None
    events_per_cpu_second: float | None = None  # max mode, the process's whole life
    steady_events_per_cpu_second: float | None = None  # steady mode, after warm-up
    visible_p50_ms: float | None = None
    visible_p99_ms: float | None = None

    @classmethod
    def of(cls, max_result: Mapping[str, Any], steady_result: Mapping[str, Any]) -> Figures:
        """From one system's ``run_system`` results in max and steady mode."""
        vis = steady_result.get("visible_latency_ms") or {}
        return cls(max_eps=max_result.get("throughput_eps"),
                   events_per_cpu_second=max_result.get("events_per_cpu_second"),
                   steady_events_per_cpu_second=steady_result.get("events_per_cpu_second"),
                   visible_p50_ms=vis.get("p50"), visible_p99_ms=vis.get("p99"))


def ratios(figs: Mapping[str, Figures]) -> dict[str, float | None]:
    """(c) over (a) and (b). ``c/a`` and ``c/b`` are the old keys of ``c_over_a`` and
    ``c_over_b`` (same values), kept for readers of earlier runs' lines."""
    a, b, c = (figs.get(s, Figures()) for s in ("a", "b", "c"))
    out = {
        "c_over_a": ratio(c.max_eps, a.max_eps),
        "c_over_b": ratio(c.max_eps, b.max_eps),
        "cpu_c_over_a": ratio(c.events_per_cpu_second, a.events_per_cpu_second),
        "p50_c_over_a": ratio(c.visible_p50_ms, a.visible_p50_ms),
        "p99_c_over_a": ratio(c.visible_p99_ms, a.visible_p99_ms),
        "cpu_steady_c_over_a": ratio(c.steady_events_per_cpu_second,
                                     a.steady_events_per_cpu_second),
    }
    return {**out, "c/a": out["c_over_a"], "c/b": out["c_over_b"]}


def goals(figs: Mapping[str, Figures], round_trips_per_batch: float | None = None
          ) -> dict[str, dict[str, Any]]:
    """Each goal: its target, the measured value and whether it is met (None: not
    measured)."""
    c = figs.get("c", Figures())
    measured = {**ratios(figs), "c_eps": c.max_eps, "c_p50_ms": c.visible_p50_ms,
                "c_p99_ms": c.visible_p99_ms, "round_trips_per_batch": round_trips_per_batch}
    return {g.key: g.check(measured[g.key]) for g in GOALS}


def summary(run_id: str, results: Mapping[str, Any], config: Mapping[str, Any]
            ) -> dict[str, Any]:
    """The last JSON line of ``compare``: each system's figures, ``ratios``, ``goals``."""
    mx, st = results.get("max") or {}, results.get("steady") or {}
    out: dict[str, Any] = {"run_id": run_id}
    for s in ("a", "b", "c"):
        if s in mx or s in st:
            m, d = mx.get(s, {}), st.get(s, {})
            out[s] = {"name": NAMES[s], "throughput_eps": m.get("throughput_eps"),
                      "latency_ms": d.get("latency_ms"),
                      "visible_latency_ms": d.get("visible_latency_ms"),
                      "steady_eps": d.get("throughput_eps"),
                      "events_per_cpu_second": {"max": m.get("events_per_cpu_second"),
                                                "steady": d.get("events_per_cpu_second")},
                      "lost": [m.get("lost"), d.get("lost")],
                      "dead_letters": [m.get("dead_letters"), d.get("dead_letters")],
                      "duplicates": [m.get("duplicate_decision_ids"),
                                     d.get("duplicate_decision_ids")],
                      "decisions_per_event": m.get("decisions_per_event")}
            if "redis" in m:
                out[s]["redis"] = m["redis"]
    figs = {s: Figures.of(mx.get(s) or {}, st.get(s) or {}) for s in ("a", "b", "c")}
    rt = results.get("round_trips")
    if rt:
        out["redis_round_trips"] = rt
    out["ratios"] = ratios(figs)
    out["goals"] = goals(figs, (rt or {}).get("batch_path_round_trips_per_batch"))
    out["config"] = dict(config)
    return out
