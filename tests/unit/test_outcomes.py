"""Outcome events, goals and last-touch attribution in the core (engine/pipeline/goals)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.errors import RulePackError, StateDecodeError
from engine.models.state import CustomerState, Touch
from engine.pack.loader import load_pack_text
from engine.pipeline.goals import DAY, Facts
from engine.testing import Harness
from tests.unit.helpers import one_each_side

PACK = """
channels: [push, email]
events:
  login: {}
  browse: {}
  purchase: {data: {amount: number}}
  profile_updated: {data: {consent: map}}
updates:
  - {on: profile_updated, merge_consent: event.data.consent}
messages:
  promo: {category: promotion, channels: [push],
          goal: {event: purchase, within: 7d, value: event.data.amount}}
  nudge: {category: promotion, channels: [email],
          goal: {event: purchase, within: 1d}}
  plain: {category: service, channels: [push, email]}
rules:
  - {id: promo_on_login, on: login, send: promo, holdout: {percent: 50, salt: s}}
  - {id: nudge_on_browse, on: browse, send: nudge}
  - {id: plain_on_browse, on: browse, send: plain}
"""

# one customer on each side of the 50% holdout (found, not assumed)
HELD, TREATED = one_each_side(50, "s")
CONSENT = {"push": True, "email": True}


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    for c in (HELD, TREATED):
        harness.customer(c, consent=dict(CONSENT))
    yield harness
    harness.close()


def _facts(h: Harness) -> Facts:
    assert h.last is not None
    return h.last.facts


def _day(h: Harness) -> int:
    return int(h.clock.ts // DAY)


def test_a_sent_message_is_touched_and_a_goal_inside_the_window_converts_it(h: Harness) -> None:
    (d,) = h.emit(TREATED, "login")
    assert d.outcome == "sent"
    day = _day(h)
    assert _facts(h) == {(day, "promo_on_login", "promo", "sent", "touched"): 1.0}
    (touch,) = h.state(TREATED).touches
    assert (touch.decision, touch.group, touch.until - touch.at) == (d.id, "sent", 7 * DAY)
    h.clock.advance("3d")
    h.emit(TREATED, "purchase", {"amount": 40})
    later = _day(h)
    assert _facts(h) == {(later, "promo_on_login", "promo", "sent", "converted"): 1.0,
                         (later, "promo_on_login", "promo", "sent", "value"): 40.0}
    assert h.state(TREATED).touches == []  # spent: a second purchase converts nothing
    h.emit(TREATED, "purchase", {"amount": 10})
    assert _facts(h) == {}


def test_a_goal_after_the_window_converts_nothing(h: Harness) -> None:
    h.emit(TREATED, "login")
    h.clock.advance("8d")
    h.emit(TREATED, "purchase", {"amount": 40})
    assert _facts(h) == {}


def test_held_out_customers_are_touched_and_converted_the_same_way(h: Harness) -> None:
    (d,) = h.emit(HELD, "login")
    assert d.reasons == ["holdout"]
    assert _facts(h) == {(_day(h), "promo_on_login", "promo", "holdout", "touched"): 1.0}
    h.clock.advance("1d")
    h.emit(HELD, "purchase", {"amount": 25})
    assert _facts(h)[(_day(h), "promo_on_login", "promo", "holdout", "converted")] == 1.0
    assert _facts(h)[(_day(h), "promo_on_login", "promo", "holdout", "value")] == 25.0


def test_a_holdout_with_another_reason_is_not_counted(h: Harness) -> None:
    h.customer(HELD, consent={})  # no consent: it would not have been sent anyway
    (d,) = h.emit(HELD, "login")
    assert d.reasons == ["holdout", "no_consent"]
    assert _facts(h) == {} and h.state(HELD).touches == []


def test_the_last_touch_wins(h: Harness) -> None:
    h.emit(TREATED, "login")  # promo, at t0
    h.clock.advance("1h")
    h.emit(TREATED, "browse")  # nudge, later: its touch is the last
    h.clock.advance("1h")
    h.emit(TREATED, "purchase", {"amount": 9})
    assert _facts(h) == {(_day(h), "nudge_on_browse", "nudge", "sent", "converted"): 1.0}
    assert [t.message for t in h.state(TREATED).touches] == ["promo"]  # still live
    h.emit(TREATED, "purchase", {"amount": 5})  # the promo's touch is now the last live one
    assert (_day(h), "promo_on_login", "promo", "sent", "converted") in _facts(h)


def test_a_new_send_replaces_the_touch_of_the_same_message(h: Harness) -> None:
    h.emit(TREATED, "login")
    h.clock.advance("2d")
    (d,) = h.emit(TREATED, "login")
    (touch,) = h.state(TREATED).touches
    assert (touch.decision, touch.at) == (d.id, h.clock.ts)


def test_messages_without_goals_leave_no_touch_and_no_facts(h: Harness) -> None:
    h2 = Harness.from_text(PACK.replace("goal: {event: purchase, within: 1d}", "cooldown: 1m"))
    h2.customer("x", consent=dict(CONSENT))
    try:
        sent = [d.message for d in h2.emit("x", "browse") if d.outcome == "sent"]
        assert sorted(sent) == ["nudge", "plain"]
        assert h2.state("x").touches == [] and h2.last is not None and h2.last.facts == {}
    finally:
        h2.close()


def test_delivery_reports_are_counted_for_known_rules_and_messages(h: Harness) -> None:
    (d,) = h.emit(TREATED, "login")
    data = {"decision_id": d.id, "channel": "push", "rule": d.rule, "message": d.message}
    h.emit(TREATED, "message_delivered", data)
    assert _facts(h) == {(_day(h), "promo_on_login", "promo", "sent", "delivered"): 1.0}
    h.emit(TREATED, "message_clicked", {**data, "rule": "no_such_rule"})
    assert _facts(h) == {}  # nothing outside the pack reaches the report


def test_a_hard_bounce_suppresses_the_channel_until_consent_is_given_again(h: Harness) -> None:
    (d,) = h.emit(TREATED, "login")
    h.emit(TREATED, "message_failed", {"decision_id": d.id, "channel": "push",
                                       "reason": "soft_bounce"})
    h.clock.advance("1d")
    assert h.emit(TREATED, "login")[0].outcome == "sent"  # a soft bounce changes nothing
    h.emit(TREATED, "message_failed", {"decision_id": d.id, "channel": "push",
                                       "reason": "hard_bounce", "rule": d.rule,
                                       "message": d.message})
    assert _facts(h) == {(_day(h), "promo_on_login", "promo", "sent", "failed"): 1.0}
    h.clock.advance("1d")
    (d2,) = h.emit(TREATED, "login")
    assert (d2.outcome, d2.reasons) == ("suppressed", ["channel_bounced"])
    h.emit(TREATED, "profile_updated", {"consent": {"push": True}})
    assert h.state(TREATED).bounced == {}
    h.clock.advance("1d")
    assert h.emit(TREATED, "login")[0].outcome == "sent"


def test_outcome_events_are_built_in_and_cannot_be_redeclared() -> None:
    pack = load_pack_text(PACK)
    assert pack.event_types["message_failed"] == {
        "decision_id": "str", "channel": "str", "rule": "str", "message": "str", "reason": "str"}
    with pytest.raises(RulePackError, match="built-in outcome event type"):
        load_pack_text(PACK.replace("  login: {}", "  login: {}\n  message_opened: {}"))


def test_a_goal_names_a_declared_event_and_a_positive_window() -> None:
    with pytest.raises(RulePackError, match="undeclared event type 'purchse'"):
        load_pack_text(PACK.replace("goal: {event: purchase, within: 1d}",
                                    "goal: {event: purchse, within: 1d}"))
    with pytest.raises(RulePackError, match="must be positive"):
        load_pack_text(PACK.replace("within: 1d}", "within: 0}"))


def test_touches_and_bounces_round_trip_on_the_wire() -> None:
    st = CustomerState("c", touches=[Touch("d-1", "r", "m", 1.0, "holdout", 2.0)],
                       bounced={"email": 3.0})
    assert CustomerState.from_wire(st.to_wire()) == st
    assert len(CustomerState("c").to_wire()) < len(st.to_wire())  # omitted while empty
    bad = st.to_wire()
    bad[bad.index([["d-1", "r", "m", 1.0, "holdout", 2.0]])] = [["d-1", "r", "m", 1.0, "x", 2]]
    with pytest.raises(StateDecodeError, match="touches"):
        CustomerState.from_wire(bad)
