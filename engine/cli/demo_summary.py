"""What `tact demo` shows while it runs: one summary from the worker's dashboard JSON, its
``/stats`` and the feed's status file, and its rich rendering (refreshed in place)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from engine.outcomes.events import METRIC_OF

#: What the summary calls a conversion: the goal events the demo answers with.
GOAL_EVENTS = ("purchase", "nps_submitted")


@dataclass
class DemoSummary:
    """The figures of a demo run so far (``None``: not known yet)."""

    seconds: float = 0.0
    events_per_s: float | None = None
    events: int = 0
    decisions: int = 0
    sent: int = 0
    suppressed: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    outcomes_in: dict[str, int] = field(default_factory=dict)  # outcome event type -> ingested
    feed_events: int = 0
    feed_goals: int = 0
    dead_letters: int = 0
    uplift: list[str] = field(default_factory=list)  # one line per rule with a holdout

    @property
    def top_reason(self) -> str | None:
        return self.top_reasons[0][0] if self.top_reasons else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "top_reason": self.top_reason,
                "top_reasons": dict(self.top_reasons)}


def _pct(x: Any) -> str:
    return f"{100 * x:+.1f}%" if isinstance(x, int | float) else "…"


def uplift_line(row: Mapping[str, Any]) -> str:
    """A row of the uplift section (``tact report --format json``'s fields) in one line."""
    return (f"{row.get('rule')}/{row.get('message')}: {row.get('verdict')}, "
            f"{_pct(row.get('uplift_abs'))} ({_pct(row.get('ci_low'))} to "
            f"{_pct(row.get('ci_high'))}), {int(row.get('touched') or 0):,} treated, "
            f"{int(row.get('holdout_touched') or 0):,} held out")


def summarize(seconds: float, dashboard: Mapping[str, Any] | None,
              stats: Mapping[str, Any] | None, feed: Mapping[str, Any] | None,
              uplift: Mapping[str, Any] | None = None) -> DemoSummary:
    """The summary from what the worker and the feed said (any of them may be missing)."""
    s = DemoSummary(seconds=seconds)
    if uplift:
        s.uplift = [uplift_line(r) for r in uplift.get("rows") or []
                    if r.get("holdout_touched")]
    if dashboard:
        s.events_per_s = dashboard.get("events_per_s")
        latency = dashboard.get("latency_ms") or {}
        s.p50_ms, s.p99_ms = latency.get("p50"), latency.get("p99")
    if stats:
        events_in: Mapping[str, int] = stats.get("events_in") or {}
        s.events = sum(events_in.values())
        s.outcomes_in = {t: events_in[t] for t in METRIC_OF if t in events_in}
        for row in stats.get("decisions") or []:
            if row.get("outcome") == "sent":
                s.sent += int(row.get("count", 0))
            else:
                s.suppressed += int(row.get("count", 0))
        s.decisions = s.sent + s.suppressed
        reasons: Mapping[str, int] = stats.get("suppressed_reasons") or {}
        s.top_reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        s.dead_letters = sum((stats.get("dead_letters") or {}).values())
    if feed:
        s.feed_events = int(feed.get("events", 0))
        answers: Mapping[str, int] = feed.get("answers") or {}
        s.feed_goals = sum(answers.get(t, 0) for t in GOAL_EVENTS)
    return s


def _num(value: float | int | None, fmt: str = ",") -> str:
    return "…" if value is None else format(value, fmt)


def render(s: DemoSummary, dashboard_url: str, logs: str) -> Group:
    """The live panel: throughput, decisions, latency, reasons, outcomes, where to look."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")  # a URL with its token is shown whole
    table.add_row("running", f"{s.seconds:,.0f} s")
    table.add_row("events/s", _num(s.events_per_s, ",.1f"))
    table.add_row("events in", f"{s.events:,}  (dead letters {s.dead_letters:,})")
    share = f" ({100 * s.sent / s.decisions:.0f}% sent)" if s.decisions else ""
    table.add_row("decisions", f"{s.decisions:,}: sent {s.sent:,}, suppressed "
                               f"{s.suppressed:,}{share}")
    table.add_row("latency", f"p50 {_num(s.p50_ms, ',.1f')} ms, p99 {_num(s.p99_ms, ',.1f')} ms")
    reasons = ", ".join(f"{r} {n:,}" for r, n in s.top_reasons) or "none yet"
    table.add_row("top suppression reasons", reasons)
    outcomes = ", ".join(f"{t.removeprefix('message_')} {n:,}"
                         for t, n in s.outcomes_in.items()) or "none yet"
    table.add_row("outcomes ingested", f"{outcomes}; conversions fed {s.feed_goals:,}")
    table.add_row("uplift today", "\n".join(s.uplift) or "no holdout touched yet")
    table.add_row("dashboard", dashboard_url)
    table.add_row("logs", logs)
    return Group(Text("Tact demo (Ctrl-C to stop)", style="bold green"), table)
