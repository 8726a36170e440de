"""The host's view of N workers: their ``/stats`` and ``/api/dashboard`` bodies combined.

Pure functions over the children's JSON (no I/O), used by :mod:`engine.worker.host_web`.
Counts add up. A summary (count, sum, max, last, mean) adds its counts and sums, keeps the
largest max, and recomputes the mean. Latency percentiles cannot be added: the host shows
the slowest child's (an upper bound of the host's), with the samples of all. What every
child reads from the same Redis (campaign progress, experience KPIs) is taken once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

SUMMARY_KEYS = frozenset({"count", "sum", "max", "last", "mean"})


def _add_counts(bodies: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for body in bodies:
        total.update(body.get(key) or {})
    return dict(total)


def _summary(parts: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    count = sum(int(p.get("count", 0)) for p in parts)
    total = sum(float(p.get("sum", 0.0)) for p in parts)
    return {"count": count, "sum": round(total, 6),
            "max": max((float(p.get("max", 0.0)) for p in parts), default=0.0),
            "last": float(parts[-1].get("last", 0.0)) if parts else 0.0,
            "mean": round(total / count, 6) if count else 0.0}


def _versions(bodies: Sequence[Mapping[str, Any]], key: str) -> str:
    """The value every child agrees on, or the distinct ones joined (mid-reload)."""
    seen = sorted({str(b.get(key, "")) for b in bodies} - {""})
    return ",".join(seen)


def merge_stats(bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``/stats`` of the host from its workers' :meth:`WorkerStats.snapshot` bodies."""
    out: dict[str, Any] = {"workers": len(bodies)}
    if not bodies:
        return out
    for key, sample in bodies[0].items():
        if key == "decisions":
            decisions: Counter[tuple[str, str]] = Counter()
            for body in bodies:
                for d in body.get(key, []):
                    decisions[(d["outcome"], d["rule"])] += int(d["count"])
            out[key] = [{"outcome": o, "rule": r, "count": n}
                        for (o, r), n in sorted(decisions.items())]
        elif key == "rules_version":
            out[key] = _versions(bodies, key)
        elif isinstance(sample, Mapping) and set(sample) == SUMMARY_KEYS:
            out[key] = _summary([b[key] for b in bodies if key in b])
        elif isinstance(sample, Mapping):
            out[key] = _add_counts(bodies, key)
        elif isinstance(sample, int | float):
            out[key] = sum(b.get(key, 0) for b in bodies)
    return out


def _series(bodies: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Per-second rows ``[second, events, sent, suppressed, dead]`` added by second."""
    rows: dict[int, list[int]] = {}
    for body in bodies:
        for second, *values in body.get("series", []):
            row = rows.setdefault(int(second), [0] * len(values))
            for i, v in enumerate(values):
                row[i] += int(v)
    return [[second, *rows[second]] for second in sorted(rows)]


def _top_rules(bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    sent: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    for body in bodies:
        for r in body.get("top_rules", []):
            sent[r["rule"]] += int(r["sent"])
            suppressed[r["rule"]] += int(r["suppressed"])
    top = (sent + suppressed).most_common(10)
    return [{"rule": rule, "sent": sent[rule], "suppressed": suppressed[rule]}
            for rule, _ in top]


def _campaigns(bodies: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The runs as the first child read them (all read the same checkpoints), with what
    every child decided for each campaign added up."""
    if not bodies:
        return []
    runs = [dict(run) for run in bodies[0].get("campaigns", [])]
    for run in runs:
        for key in ("sent", "suppressed"):
            run[key] = sum(int(other[key]) for body in bodies
                           for other in body.get("campaigns", [])
                           if other.get("run") == run.get("run"))
    return runs


def merge_dashboards(bodies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``/api/dashboard`` of the host from its workers' bodies."""
    if not bodies:
        return {"workers": 0}
    latency = [b.get("latency_ms") or {} for b in bodies]

    def slowest(q: str) -> float | None:
        values = [float(x[q]) for x in latency if x.get(q) is not None]
        return max(values) if values else None

    lag: Counter[str] = Counter()
    for body in bodies:
        lag.update(body.get("lag") or {})
    first = bodies[0]
    return {
        "workers": len(bodies),
        "now": max(int(b.get("now", 0)) for b in bodies),
        "series": _series(bodies),
        "events_per_s": round(sum(float(b.get("events_per_s", 0.0)) for b in bodies), 1),
        "latency_ms": {"p50": slowest("p50"), "p99": slowest("p99"),
                       "samples": sum(int(x.get("samples", 0)) for x in latency)},
        "top_rules": _top_rules(bodies),
        "reasons": dict(Counter(_add_counts(bodies, "reasons")).most_common(12)),
        "dead_letters": _add_counts(bodies, "dead_letters"),
        "rules_version": _versions(bodies, "rules_version"),
        "pack": _versions(bodies, "pack"),
        "reloads": sum(int(b.get("reloads", 0)) for b in bodies),
        "reloads_by_result": _add_counts(bodies, "reloads_by_result"),
        "lag": dict(sorted(lag.items(), key=lambda kv: int(kv[0]))),
        "lag_total": sum(lag.values()),
        **{key: sum(int(b.get(key, 0)) for b in bodies)
           for key in ("pending_followups", "events_total", "decisions_total",
                       "dead_letters_total")},
        "campaigns": _campaigns(bodies),
        "kpis": first.get("kpis", {}),
    }
