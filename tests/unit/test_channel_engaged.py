"""choose: engaged: the channel the customer opens and clicks most, recent ones only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.models.decision import Decision
from engine.models.event import Envelope
from engine.models.state import CustomerState
from engine.observability.customer import customer_view
from engine.pack.loader import load_pack_text
from engine.pipeline import decide
from engine.pipeline.engagement import MAX_PER_KIND
from engine.testing import Harness

_register()
runner = CliRunner()

PACK = """
channels: [push, sms, email]
categories: [service]
events: {shipped: {}, digest: {}}
attributes: {tz: str}
messages:
  update: {category: service, channels: [push, sms, email], choose: engaged}
  news: {category: service, channels: [push, email], choose: {engaged: {within: 7d}}}
rules:
  - {id: update, on: shipped, send: update}
  - {id: news, on: digest, send: news}
"""

ALL = {"push": True, "sms": True, "email": True}


def outcomes(decisions: list[Decision], message: str) -> list[tuple[str, str, list[str]]]:
    return [(d.channel, d.outcome, d.reasons) for d in decisions if d.message == message]


def engage(h: Harness, customer: str, kind: str, channel: str, n: int = 1) -> None:
    for _ in range(n):
        h.emit(customer, f"message_{kind}", {"decision_id": "d", "channel": channel,
                                             "rule": "update", "message": "update"})


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    yield harness
    harness.close()


def test_the_channel_opened_and_clicked_most_carries_it(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "push")
    engage(h, "c1", "opened", "email", 2)
    engage(h, "c1", "clicked", "email")
    assert outcomes(h.emit("c1", "shipped"), "update") == [
        ("email", "sent", []),
        ("push", "suppressed", ["channel_chosen"]),
        ("sms", "suppressed", ["channel_chosen"]),
    ]


def test_clicks_count_like_opens(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "push", 2)
    engage(h, "c1", "clicked", "sms", 3)
    assert outcomes(h.emit("c1", "shipped"), "update")[0] == ("sms", "sent", [])


def test_no_history_and_ties_keep_the_listed_order(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    assert outcomes(h.emit("c1", "shipped"), "update")[0] == ("push", "sent", [])
    engage(h, "c1", "opened", "email")
    engage(h, "c1", "opened", "sms")
    assert outcomes(h.emit("c1", "shipped"), "update") == [
        ("sms", "sent", []),  # tied with email: sms is listed first
        ("email", "suppressed", ["channel_chosen"]),
        ("push", "suppressed", ["channel_chosen"]),
    ]


def test_delivered_and_failed_reports_are_not_engagement(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "delivered", "email", 3)
    engage(h, "c1", "failed", "sms", 3)
    assert outcomes(h.emit("c1", "shipped"), "update")[0] == ("push", "sent", [])
    assert h.state("c1").engaged == {}


def test_the_most_engaged_channel_without_consent_falls_back_in_order(h: Harness) -> None:
    h.customer("c1", consent={"push": True, "sms": True})
    engage(h, "c1", "opened", "email", 3)
    engage(h, "c1", "opened", "sms")
    assert outcomes(h.emit("c1", "shipped"), "update") == [
        ("email", "suppressed", ["no_consent"]),
        ("sms", "sent", []),
        ("push", "suppressed", ["channel_chosen"]),
    ]


def test_only_opens_within_the_window_count(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "email", 3)
    h.clock.advance("6d")
    engage(h, "c1", "opened", "push")
    assert outcomes(h.emit("c1", "digest"), "news")[0] == ("email", "sent", [])
    h.clock.advance("2d")  # the email opens are 8 days old: outside news' 7 days
    assert outcomes(h.emit("c1", "digest"), "news")[0] == ("push", "sent", [])
    # the 90 days of update still count them
    assert outcomes(h.emit("c1", "shipped"), "update")[0] == ("email", "sent", [])


def test_state_stays_bounded_and_older_than_the_longest_window_goes(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "email", MAX_PER_KIND + 5)
    engage(h, "c1", "opened", "fax")  # not one of the pack's channels: not kept
    engage(h, "c1", "clicked", "email")
    kept = h.state("c1").engaged
    assert set(kept) == {"email"}
    assert [len(times) for times in kept["email"]] == [MAX_PER_KIND, 1]
    h.clock.advance("91d")
    engage(h, "c1", "opened", "push")
    assert set(h.state("c1").engaged) == {"push"}


def test_a_pack_without_engaged_keeps_no_engagement() -> None:
    h = Harness.from_text(PACK.replace("choose: engaged", "choose: first").replace(
        ", choose: {engaged: {within: 7d}}", ""))
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "email")
    assert h.state("c1").engaged == {}
    h.close()


def test_engagement_survives_the_wire(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "sms")
    engage(h, "c1", "clicked", "sms")
    st = h.state("c1")
    back = CustomerState.from_wire(st.to_wire())
    assert back.engaged == st.engaged and back.engaged["sms"][1]
    assert CustomerState.from_wire(CustomerState("c2").to_wire()).engaged == {}


def test_explain_says_why_the_channel_was_chosen(h: Harness) -> None:
    h.customer("c1", consent={"email": True, "push": True})
    engage(h, "c1", "opened", "email", 5)
    engage(h, "c1", "clicked", "email", 2)
    engage(h, "c1", "opened", "push")
    env = Envelope.at_event_time(h.source.event("c1", "shipped", id="e1"))
    result = decide(h.pack, {"c1": h.state("c1")}, [env], trace=True)
    by_channel = {d.channel: d.trace for d in result.decisions if d.message == "update"}
    why = "most engaged email (opened 5, clicked 2 on email; opened 1 on push in 90d)"
    assert by_channel["email"][-2:] == [f"channel choice {why}: email carries it", "sent"]
    assert by_channel["push"][-2] == f"channel choice {why}: email carries it -> channel_chosen"


def test_the_customer_view_shows_engagement_per_channel(h: Harness) -> None:
    h.customer("c1", consent=ALL)
    engage(h, "c1", "opened", "push")
    engage(h, "c1", "opened", "email", 2)
    engage(h, "c1", "clicked", "email")
    view = customer_view(h.state("c1"), now=h.clock.ts)
    last = h.clock.now.isoformat()
    assert view["engaged"] == {
        "email": {"opened": 2, "clicked": 1, "last": last},
        "push": {"opened": 1, "clicked": 0, "last": last},
    }
    assert list(view["engaged"]) == ["email", "push"]


def test_a_rule_may_choose_engaged_for_a_message() -> None:
    pack = load_pack_text(PACK.replace(
        "  - {id: news, on: digest, send: news}",
        "  - {id: news, on: digest, send: {message: news, choose: {engaged: {within: 30d}}}}"))
    assert pack.rules_by_id["news"].choice is not None
    assert pack.rules_by_id["news"].choice.engaged == 30 * 86400.0
    assert pack.engaged_within == 90 * 86400.0


@pytest.mark.parametrize(
    ("choose", "message"),
    [
        ("{engaged: {within: 0s}}", "the engagement window must be positive"),
        ("{engaged: {within: soon}}",
         "unknown constant 'soon' where a duration is expected (define it under constants:)"),
    ],
)
def test_engaged_errors_point_into_the_file(tmp_path: Path, choose: str, message: str) -> None:
    body = PACK.replace("choose: engaged", f"choose: {choose}")
    (tmp_path / "pack.yaml").write_text(body, encoding="utf-8")
    result = runner.invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]  # at the window's value
    assert first == f"{tmp_path / 'pack.yaml'}:7:88: error [messages.update]: {message}"
