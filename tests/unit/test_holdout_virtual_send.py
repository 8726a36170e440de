"""Held-out customers are counted like treated ones: a "virtual send" (engine/pipeline).

When a rule's holdout is the only reason its message is not sent, the held-out send is
recorded in the customer's history (marked held), so cooldowns, caps and the moment's
channel slots treat both groups alike, and nothing else takes the customer for "sent".
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import msgpack
import pytest

from engine.models.state import CustomerState, SentRecord
from engine.observability.customer import customer_view
from engine.pipeline.goals import Facts
from engine.pipeline.policies import in_holdout
from engine.testing import Harness
from tests.unit.helpers import one_each_side

PACK = """
channels: [push, email]
events:
  payment_failed: {}
  login: {}
  browse: {}
  purchase: {}
messages:
  pay_help: {category: service, channels: [push], cooldown: 2d,
             goal: {event: purchase, within: 3d}}
  promo: {category: promotion, channels: [push]}
  tip: {category: service, channels: [email]}
  followup: {category: service, channels: [email]}
frequency_caps:
  - {id: push_week, max: 3, window: 7d, channels: [push]}
rules:
  - {id: help_on_failure, on: payment_failed, send: pay_help, holdout: {percent: 50, salt: s}}
  - {id: promo_on_login, on: login, send: promo}
  - {id: tip_on_browse, on: browse, send: tip,
     when: "last_sent('pay_help') == null"}
  - {id: followup_on_browse, on: browse, send: followup,
     when: "sent_count('pay_help', '7d') > 0"}
"""

HELD, TREATED = one_each_side(50, "s")
CONSENT = {"push": True, "email": True}


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    for c in (HELD, TREATED):
        harness.customer(c, consent=dict(CONSENT))
    yield harness
    harness.close()


def _touched(facts: Facts, group: str) -> float:
    return sum(v for k, v in facts.items() if k[3] == group and k[4] == "touched")


def test_a_cooldown_holds_back_the_held_out_customer_as_it_does_the_treated_one(
        h: Harness) -> None:
    touched = {"sent": 0.0, "holdout": 0.0}
    for _ in range(12):  # a payment failure every 12 h for 6 days: cooldown 2d
        for c in (TREATED, HELD):
            h.emit(c, "payment_failed")
            assert h.last is not None
            for group in touched:
                touched[group] += _touched(h.last.facts, group)
        h.clock.advance("12h")
    assert touched == {"sent": 3.0, "holdout": 3.0}
    treated = [(r.at, r.held) for r in h.state(TREATED).history]
    held = [(r.at, r.held) for r in h.state(HELD).history]
    assert [at for at, _ in treated] == [at for at, _ in held]
    assert {flag for _, flag in treated} == {False} and {flag for _, flag in held} == {True}


def test_a_held_entry_counts_against_the_caps_that_cover_its_message(h: Harness) -> None:
    h.emit(HELD, "payment_failed")
    h.emit(TREATED, "payment_failed")
    outcomes = {}
    for c in (HELD, TREATED):
        got = [h.emit(c, "login") for _ in range(3)]
        outcomes[c] = [(d.outcome, d.reasons) for (d,) in got]
    # pay_help took one of the 3 pushes a week in both groups: the third promo is capped
    assert outcomes[HELD] == outcomes[TREATED] == [
        ("sent", []), ("sent", []), ("suppressed", ["frequency_cap"])]


def test_a_held_entry_never_makes_the_customer_look_sent(h: Harness) -> None:
    (held,) = h.emit(HELD, "payment_failed")
    assert (held.outcome, held.reasons) == ("suppressed", ["holdout"])
    (treated,) = h.emit(TREATED, "payment_failed")
    assert treated.outcome == "sent"
    # rule conditions reading the sent history see only what was really sent
    assert sorted(d.message for d in h.emit(HELD, "browse") if d.outcome == "sent") == ["tip"]
    assert sorted(d.message for d in h.emit(TREATED, "browse")
                  if d.outcome == "sent") == ["followup"]
    view = customer_view(h.state(HELD), now=h.clock.ts)
    assert [(m["message"], m["held"]) for m in view["messages"]] == [
        ("tip", False), ("pay_help", True)]


def test_explain_says_the_cooldown_comes_from_a_held_out_send() -> None:
    harness = Harness.from_text(PACK, trace=True)
    try:
        harness.customer(HELD, consent=dict(CONSENT))
        harness.emit(HELD, "payment_failed")
        harness.clock.advance("1h")
        (d,) = harness.emit(HELD, "payment_failed")
        assert d.reasons == ["holdout", "cooldown"]
        (line,) = [t for t in d.trace if t.startswith("cooldown")]
        assert "held out" in line and "not sent" in line
    finally:
        harness.close()


def test_a_held_out_message_takes_its_channel_slot_like_a_send() -> None:
    pack = PACK.replace(
        "  - {id: promo_on_login, on: login, send: promo}",
        "  - {id: promo_on_login, on: login, send: promo}\n"
        "  - {id: help_on_login, on: login, send: pay_help, priority: 10,"
        " holdout: {percent: 50, salt: s}}")
    harness = Harness.from_text(pack)
    try:
        got = {}
        for c in (HELD, TREATED):
            harness.customer(c, consent=dict(CONSENT))
            got[c] = {d.message: d.reasons for d in harness.emit(c, "login")}
        assert got[TREATED] == {"pay_help": [], "promo": ["lower_priority"]}
        assert got[HELD] == {"pay_help": ["holdout"], "promo": ["lower_priority"]}
    finally:
        harness.close()


# -- wire form ------------------------------------------------------------------------------

def test_held_entries_survive_the_wire_and_old_states_still_read() -> None:
    st = CustomerState("c", history=[SentRecord("m", "push", "service", 10.0),
                                     SentRecord("m", "push", "service", 20.0, held=True)])
    back = CustomerState.from_wire(msgpack.unpackb(msgpack.packb(st.to_wire())))
    assert back.history == st.history
    # a send is written as before the flag (four elements), so older states read as sends
    old = CustomerState("c", history=[SentRecord("m", "push", "service", 10.0)]).to_wire()
    assert [["m", "push", "service", 10.0]] in old
    assert [r.held for r in CustomerState.from_wire(old).history] == [False]


@pytest.mark.parametrize("flag", [False, 1, "held", None])
def test_a_held_flag_of_another_value_is_refused(flag: object) -> None:
    from engine.errors import StateDecodeError

    wire = CustomerState("c", history=[SentRecord("m", "push", "service", 1.0, held=True)]
                         ).to_wire()
    held_records = [x for x in wire if type(x) is list and x and x[0] == ["m", "push",
                                                                          "service", 1.0, True]]
    assert held_records
    held_records[0][0][4] = flag
    with pytest.raises(StateDecodeError, match="history"):
        CustomerState.from_wire(wire)


# -- simulation: a 30% holdout gets ~30% of the touches ---------------------------------------

SIM_PACK = """
channels: [push]
events:
  payment_failed: {}
  purchase: {}
messages:
  pay_help: {category: service, channels: [push], cooldown: 2d,
             goal: {event: purchase, within: 3d}}
frequency_caps:
  - {id: push_week, max: 2, window: 7d, channels: [push]}
rules:
  - {id: help_on_failure, on: payment_failed, send: pay_help, holdout: {percent: 30, salt: p}}
"""


def test_a_30_percent_holdout_gets_its_share_of_the_touches() -> None:
    rng = random.Random(12)
    customers = [f"sim{i}" for i in range(400)]
    harness = Harness.from_text(SIM_PACK)
    per_customer: dict[str, float] = {}
    try:
        for c in customers:
            harness.customer(c, consent={"push": True})
        # each customer's failures at random moments over 3 weeks (1 to 12 of them)
        moments = sorted((rng.uniform(0, 21 * 86400), c) for c in customers
                         for _ in range(rng.randint(1, 12)))
        start = harness.clock.ts
        for at, c in moments:
            harness.clock.advance(start + at - harness.clock.ts)
            harness.emit(c, "payment_failed")
            assert harness.last is not None
            per_customer[c] = per_customer.get(c, 0.0) + sum(
                v for k, v in harness.last.facts.items() if k[4] == "touched")
    finally:
        harness.close()
    held = {c for c in customers if in_holdout(c, 30, "p")}
    total = sum(per_customer.values())
    share = sum(per_customer[c] for c in held) / total
    # the groups are drawn per customer: the held share of the touches varies as
    # p(1-p) sum k_i^2 / (sum k_i)^2 around p (k_i: customer i's touches); 4 sigma
    p = len(held) / len(customers)
    sigma = (p * (1 - p) * sum(k * k for k in per_customer.values())) ** 0.5 / total
    assert abs(share - p) < 4 * sigma, (share, p, sigma)
