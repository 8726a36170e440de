"""`tact demo`'s live summary: figures from the worker's JSON and the feed's status."""

from __future__ import annotations

from rich.console import Console

from engine.cli.demo_summary import render, summarize

EVENTS_IN = {"app_open": 700, "message_delivered": 90, "message_opened": 30, "purchase": 12,
             "message_failed": 2}
STATS = {
    "events_in": EVENTS_IN,
    "decisions": [{"outcome": "sent", "rule": "a", "count": 40},
                  {"outcome": "suppressed", "rule": "a", "count": 25},
                  {"outcome": "sent", "rule": "b", "count": 10},
                  {"outcome": "suppressed", "rule": "b", "count": 5}],
    "suppressed_reasons": {"no_consent": 9, "cooldown": 20, "holdout": 4, "detractor": 1,
                           "quiet_hours": 2, "stale": 1},
    "dead_letters": {"invalid": 3},
}
DASHBOARD = {"events_per_s": 42.5, "latency_ms": {"p50": 3.2, "p99": 18.0, "samples": 99}}
FEED = {"events": 834, "by_type": {"purchase": 12}, "answers": {"purchase": 7,
                                                                "nps_submitted": 2,
                                                                "message_delivered": 90}}
UPLIFT = {"rows": [
    {"rule": "payment_trouble", "message": "payment_help", "touched": 700,
     "holdout_touched": 300, "uplift_abs": 0.2152, "ci_low": 0.1553, "ci_high": 0.2751,
     "verdict": "significant uplift"},
    {"rule": "shipping_update", "message": "shipping_update", "touched": 0,
     "holdout_touched": 0, "uplift_abs": None, "ci_low": None, "ci_high": None,
     "verdict": "no data"},
]}


def test_summary_adds_up_the_workers_figures() -> None:
    s = summarize(12.0, DASHBOARD, STATS, FEED, UPLIFT)
    assert (s.sent, s.suppressed, s.decisions) == (50, 30, 80)
    assert s.events == sum(EVENTS_IN.values())
    assert s.top_reason == "cooldown"
    assert [r for r, _ in s.top_reasons] == ["cooldown", "no_consent", "holdout",
                                             "quiet_hours", "detractor"]
    assert s.outcomes_in == {"message_delivered": 90, "message_opened": 30,
                             "message_failed": 2}
    assert s.feed_goals == 9  # the answers that are goal events, not the delivery reports
    assert (s.p50_ms, s.p99_ms, s.events_per_s, s.dead_letters) == (3.2, 18.0, 42.5, 3)
    assert s.uplift == ["payment_trouble/payment_help: significant uplift, +21.5% "
                        "(+15.5% to +27.5%), 700 treated, 300 held out"]
    assert s.to_json()["top_reason"] == "cooldown"


def test_summary_before_the_worker_answers() -> None:
    s = summarize(1.0, None, None, None)
    assert (s.decisions, s.top_reason, s.p50_ms, s.uplift) == (0, None, None, [])


def test_rendering_shows_the_whole_dashboard_url_on_a_narrow_console() -> None:
    url = "http://127.0.0.1:6066/dashboard#token=" + "ab12" * 16
    console = Console(width=60, record=True, force_terminal=False)
    console.print(render(summarize(3.0, DASHBOARD, STATS, FEED, UPLIFT), url, "x.log"))
    text = console.export_text()
    assert "".join(text.split()).count(url) == 1  # folded over lines, never cut
    assert "cooldown 20" in text and "p99 18.0 ms" in text and "significant uplift" in text
