"""The single customer view: the last decisions the core keeps per customer (bounded, in
the state's wire form), the JSON view and its masking of TACT_PII_ATTRIBUTES."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack
import pytest

from engine.config import TactSettings
from engine.errors import StateDecodeError
from engine.models.state import RECENT_DECISIONS, CustomerState, RecentDecision
from engine.observability.customer import MASK, customer_view
from engine.state.wire import decode_state, encode_state
from engine.testing import Harness

PACK = """
channels: [push, email]
events:
  cart_abandoned: {data: {value: float}}
  purchase: {}
contexts:
  shopping: {start: [cart_abandoned], end: [purchase], ttl: 1h}
messages:
  nudge: {category: promotion, channels: [push]}
  reminder: {category: promotion, channels: [email]}
rules:
  - id: cart_nudge
    on: cart_abandoned
    send: nudge
  - id: cart_reminder
    on: cart_abandoned
    after: 30m
    unless: [purchase]
    send: reminder
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer("c1", consent={"push": True, "email": False},
                     attributes={"email": "a@example.com", "tier": "gold"})
    yield harness
    harness.close()


def _recent(st: CustomerState) -> list[RecentDecision]:
    out = [RecentDecision.unpack(packed) for packed in st.recent]
    assert None not in out
    return [d for d in out if d is not None]


def test_the_core_keeps_each_decision_with_its_outcome_and_reasons(h: Harness) -> None:
    start = h.clock.ts
    h.emit("c1", "cart_abandoned", {"value": 9.5})
    h.advance("31m")  # the follow-up fires on email, which has no consent
    recent = _recent(h.state("c1"))
    assert [(r.rule, r.channel, r.outcome) for r in recent] == [
        ("cart_nudge", "push", "sent"), ("cart_reminder", "email", "suppressed")]
    assert recent[1].reasons and "consent" in " ".join(recent[1].reasons)
    assert (recent[0].at, recent[1].at) == (start, start + 1800)  # event time, due time
    assert len(recent[0].id) == 36


def test_recent_decisions_are_bounded_oldest_first_out(h: Harness) -> None:
    for _ in range(RECENT_DECISIONS + 5):
        h.emit("c1", "cart_abandoned", {"value": 1.0})
        h.clock.advance("1m")
    recent = _recent(h.state("c1"))
    assert len(recent) == RECENT_DECISIONS
    times = [r.at for r in recent]
    assert times == sorted(times) and times[-1] == h.clock.ts - 60  # the newest kept


def test_recent_decisions_round_trip_and_older_states_lack_them() -> None:
    st = CustomerState("c1", version=3)
    st.remember(RecentDecision("d1", 5.0, "r", "m", "push", "suppressed", ["cooldown"]))
    again = decode_state(encode_state(st))
    # kept as the object in the batch that made it, packed on the way out: the same bytes
    assert encode_state(again) == encode_state(st) and _recent(again) == [
        RecentDecision("d1", 5.0, "r", "m", "push", "suppressed", ["cooldown"])]
    # empty: omitted (the optional fields end before it); set: written after the others
    assert len(CustomerState("c1").to_wire()) < len(st.to_wire())
    assert decode_state(encode_state(CustomerState("c1"))).recent == []


@pytest.mark.parametrize("bad", ["x", [["d1", 5.0]], ["text"], [b"ok", 3]])
def test_a_malformed_recent_field_is_refused(bad: object) -> None:
    wire = CustomerState("c1").to_wire()
    before_recent: list[object] = [{}, [], {}]  # sets, touches, bounced: the optional fields first
    with pytest.raises(StateDecodeError, match="recent"):
        CustomerState.from_wire([*wire, *before_recent, bad])


@pytest.mark.parametrize("record", [
    ["d1", 5.0, "r", "m", "push", "maybe", []], ["d1", "t", "r", "m", "push", "sent", []],
    ["d1", 5.0, "r", "m", "push", "sent", "reason"], ["d1", 5.0, "r", "m", "push", "sent"],
    ["d1", 5.0, "r", "m", "push", "sent", [1]], {"id": "d1"},
])
def test_the_view_skips_a_packed_decision_that_is_not_one(record: object) -> None:
    st = CustomerState("c1", version=1)
    st.remember(RecentDecision("d1", 5.0, "r", "m", "push", "sent", []))
    st.recent.extend([msgpack.packb(record), b"\xc1garbage"])
    assert [d["id"] for d in customer_view(st, now=10.0)["decisions"]] == ["d1"]


def test_the_view_masks_pii_and_lists_newest_first(h: Harness) -> None:
    h.emit("c1", "cart_abandoned", {"value": 9.5})
    h.clock.advance("1m")
    h.emit("c1", "cart_abandoned", {"value": 3.0})
    st = h.state("c1")
    view = customer_view(st, now=h.clock.ts, pii=["email", "phone"])
    assert view["attributes"] == {"email": MASK, "tier": "gold"}
    assert view["masked"] == ["email"]
    assert "a@example.com" not in str(view)
    assert view["consent"] == {"push": True, "email": False}
    assert view["active_contexts"] == ["shopping"]
    assert [d["at"] for d in view["decisions"]] == sorted(
        (d["at"] for d in view["decisions"]), reverse=True)
    assert view["decisions"][0]["rule"] == "cart_nudge"
    assert view["decisions"][0]["at"].startswith("2026-01-01T12:01")
    assert [f["rule"] for f in view["followups"]] == ["cart_reminder"]  # one per rule: re-armed
    assert view["followups"][0]["due"].startswith("2026-01-01T12:31")
    assert view["messages"][0]["message"] == "nudge"
    assert "tact explain" in view["trace"]


def test_the_view_marks_contexts_that_ended_by_now(h: Harness) -> None:
    h.emit("c1", "cart_abandoned", {"value": 9.5})
    view = customer_view(h.state("c1"), now=h.clock.ts + 7200)
    assert view["contexts"][0]["name"] == "shopping" and not view["contexts"][0]["active"]
    assert view["active_contexts"] == []
    assert view["followups"][0]["overdue"]


def test_pii_attributes_setting_takes_comma_separated_names(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TACT_PII_ATTRIBUTES", " email, phone ,,")
    assert TactSettings().pii_attributes == ["email", "phone"]
    monkeypatch.delenv("TACT_PII_ATTRIBUTES")
    assert TactSettings().pii_attributes == []


def test_the_view_shows_keyed_instances_by_key_and_map_entries() -> None:
    st = CustomerState("c1", counters={"visits": 2, "failed\x1fP-1": 1},
                       timestamps={"missed\x1fP-1": 0.0},
                       maps={"last_price": {"SKU-1": [9.5, 86400.0]}})
    view = customer_view(st, now=86400.0)
    assert view["counters"] == {"visits": 2, "failed[P-1]": 1}
    assert view["timestamps"] == {"missed[P-1]": "1970-01-01T00:00:00+00:00"}
    assert view["maps"] == {"last_price": {"SKU-1": {"value": 9.5,
                                                     "put": "1970-01-02T00:00:00+00:00"}}}


def test_the_view_shows_set_members_and_campaign_runs_newest_first() -> None:
    st = CustomerState("c1", sets={"returned": {"shoes": 0.0, "<b>x</b>": 86400.0}},
                       campaigns={"weekend@19700101T000000Z": 3600.0,
                                  "weekend@19700102T000000Z": 90000.0,
                                  "not a run id": 7200.0})
    view = customer_view(st, now=90000.0)
    assert view["sets"] == {"returned": {"shoes": "1970-01-01T00:00:00+00:00",
                                         "<b>x</b>": "1970-01-02T00:00:00+00:00"}}
    assert view["campaigns"] == [
        {"run": "weekend@19700102T000000Z", "campaign": "weekend",
         "scheduled": "1970-01-02T00:00:00+00:00", "decided": "1970-01-02T01:00:00+00:00"},
        {"run": "not a run id", "campaign": None, "scheduled": None,
         "decided": "1970-01-01T02:00:00+00:00"},
        {"run": "weekend@19700101T000000Z", "campaign": "weekend",
         "scheduled": "1970-01-01T00:00:00+00:00", "decided": "1970-01-01T01:00:00+00:00"},
    ]


def test_the_view_of_a_customer_decided_for_a_campaign_run() -> None:
    """The run id the core records as it decides a campaign event is in the view."""
    pack = PACK + """
campaigns:
  - id: weekend
    schedule: {at: "2030-01-04T10:00"}
    send: nudge
"""
    harness = Harness.from_text(pack)
    try:
        harness.customer("c2", consent={"push": True})
        run = "weekend@20300104T100000Z"
        harness.emit("c2", "campaign", {"campaign": "weekend", "run": run})
        runs = customer_view(harness.state("c2"), now=harness.clock.ts)["campaigns"]
    finally:
        harness.close()
    assert [(r["run"], r["campaign"], r["scheduled"]) for r in runs] == [
        (run, "weekend", "2030-01-04T10:00:00+00:00")]
    assert runs[0]["decided"] is not None
