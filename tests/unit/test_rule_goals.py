"""Goals given on a rule (engine/pipeline/goals): they apply to every message the rule sends;
a goal on both a rule and its message is an error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.errors import RulePackError
from engine.pack.loader import load_pack_text
from engine.pipeline.goals import DAY
from engine.testing import Harness
from tests.unit.helpers import one_each_side

PACK = """
channels: [push, email]
events:
  login: {}
  browse: {}
  purchase: {data: {amount: number}}
  signup: {data: {plan: str}}
messages:
  offer: {category: promotion, channels: [push]}
rules:
  - {id: offer_on_login, on: login, send: offer,
     goal: {event: purchase, within: 2d, value: event.data.amount},
     holdout: {percent: 50, salt: s}}
  - {id: offer_on_browse, on: browse, send: offer,
     goal: {event: signup, within: 1d}}
"""

HELD, TREATED = one_each_side(50, "s")


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    for c in (HELD, TREATED):
        harness.customer(c, consent={"push": True})
    yield harness
    harness.close()


def _day(h: Harness) -> int:
    return int(h.clock.ts // DAY)


def test_a_rules_goal_touches_and_converts_its_message_with_the_rules_value(h: Harness) -> None:
    (d,) = h.emit(TREATED, "login")
    assert d.outcome == "sent"
    assert h.last is not None
    assert h.last.facts == {(_day(h), "offer_on_login", "offer", "sent", "touched"): 1.0}
    (touch,) = h.state(TREATED).touches
    assert (touch.rule, touch.until - touch.at) == ("offer_on_login", 2 * DAY)
    h.clock.advance("1d")
    h.emit(TREATED, "purchase", {"amount": 30})
    assert h.last.facts == {(_day(h), "offer_on_login", "offer", "sent", "converted"): 1.0,
                            (_day(h), "offer_on_login", "offer", "sent", "value"): 30.0}


def test_the_same_message_from_another_rule_has_that_rules_goal(h: Harness) -> None:
    h.emit(TREATED, "browse")
    (touch,) = h.state(TREATED).touches
    assert (touch.rule, touch.until - touch.at) == ("offer_on_browse", DAY)
    h.emit(TREATED, "purchase", {"amount": 30})  # not this rule's goal
    assert h.last is not None and h.last.facts == {}
    h.emit(TREATED, "signup", {"plan": "pro"})
    assert h.last.facts == {(_day(h), "offer_on_browse", "offer", "sent", "converted"): 1.0}


def test_a_rules_goal_counts_its_holdout_like_for_like(h: Harness) -> None:
    (d,) = h.emit(HELD, "login")
    assert d.reasons == ["holdout"]
    h.emit(HELD, "purchase", {"amount": 12})
    assert h.last is not None
    assert h.last.facts == {(_day(h), "offer_on_login", "offer", "holdout", "converted"): 1.0,
                            (_day(h), "offer_on_login", "offer", "holdout", "value"): 12.0}


def test_a_goal_on_both_the_rule_and_its_message_is_an_error() -> None:
    text = PACK.replace("offer: {category: promotion, channels: [push]}",
                        "offer: {category: promotion, channels: [push],\n"
                        "          goal: {event: purchase, within: 1d}}")
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, "p.yaml")
    msgs = [(i.message, i.location.line if i.location else None) for i in err.value.issues]
    both = [(m, line) for m, line in msgs if "has a goal of its own" in m]
    assert len(both) == 2, msgs  # one per rule, each at that rule's goal
    assert {line for _, line in both} == {text.splitlines().index(s) + 1 for s in (
        "     goal: {event: purchase, within: 2d, value: event.data.amount},",
        "     goal: {event: signup, within: 1d}}")}


def test_a_rules_goal_names_a_declared_event_with_a_hint() -> None:
    with pytest.raises(RulePackError) as err:
        load_pack_text(PACK.replace("event: signup", "event: signupp"), "p.yaml")
    assert any("undeclared event type 'signupp'" in i.message and "signup" in i.message
               for i in err.value.issues)
