"""Keyed follow-ups and contexts: state per quote (order, ...), not only per customer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from engine.errors import StateDecodeError
from engine.models.state import KEY_SEP, CustomerState, PendingFollowup, instance_key
from engine.pipeline.state_ops import MAX_INSTANCES
from engine.state.wire import decode_state, encode_state
from engine.testing import Harness

PACK = """
channels: [push, email, webhook]
consent: {channels: {webhook: none}}
events:
  quote_requested: {data: {quote_id: str, product: str}}
  quote_sent: {data: {quote_id: str}}
  quote_withdrawn: {data: {ref: str}}
  quote_status_checked: {data: {quote_id: any}}
  app_open: {}
contexts:
  pending_quote:
    key: event.data.quote_id
    ttl: 7d
    start: [quote_requested]
    end: [quote_sent]
  browsing: {start: [app_open]}
messages:
  escalation: {category: internal, channels: [webhook], params: {quote: event.data.quote_id}}
  in_progress: {category: service, channels: [email], params: {quote: event.data.quote_id}}
  any_pending: {category: service, channels: [push]}
rules:
  - id: escalate
    on: quote_requested
    after: 2h
    key: event.data.quote_id
    unless: [quote_sent]
    send: escalation
  - id: still_in_progress
    on: quote_status_checked
    when: context_active("pending_quote", event.data.quote_id)
    send: in_progress
  - id: something_pending
    on: quote_status_checked
    when: context.pending_quote
    send: any_pending
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer("c1", consent={"push": True, "email": True})
    yield harness
    harness.close()


def _request(h: Harness, quote: str) -> None:
    h.emit("c1", "quote_requested", {"quote_id": quote, "product": "p"})


def _sent(decisions: list[Any]) -> list[tuple[str, Any]]:
    return sorted((d.message, d.params.get("quote")) for d in decisions if d.outcome == "sent")


def test_a_second_key_stacks_and_the_same_key_rearms(h: Harness) -> None:
    _request(h, "Q1")
    h.clock.advance("1h")
    _request(h, "Q2")  # another quote: Q1 keeps its own timer
    assert _sent(h.advance("1h")) == [("escalation", "Q1")]
    h.clock.advance("30m")
    _request(h, "Q2")  # the same quote again: re-armed, due two hours from now
    assert h.advance("1h") == []
    assert _sent(h.advance("1h")) == [("escalation", "Q2")]
    assert h.state("c1").followups == []


def test_an_unless_event_cancels_only_the_follow_up_of_its_key(h: Harness) -> None:
    for quote in ("Q1", "Q2", "Q3"):
        _request(h, quote)
    h.emit("c1", "quote_sent", {"quote_id": "Q2"})
    assert sorted(f.key or "" for f in h.state("c1").followups) == ["Q1", "Q3"]
    assert _sent(h.advance("2h")) == [("escalation", "Q1"), ("escalation", "Q3")]


def test_an_unless_event_without_its_key_cancels_every_instance(h: Harness) -> None:
    _request(h, "Q1")
    _request(h, "Q2")
    h.emit("c1", "quote_sent", {})  # which quote? in doubt, silence
    assert h.state("c1").followups == []
    assert h.advance("3h") == []


def test_a_trigger_without_its_key_schedules_nothing_and_says_so(h: Harness) -> None:
    h.emit("c1", "quote_requested", {"product": "p"})
    assert h.state("c1").followups == []
    assert h.last is not None
    assert [(f.rule, f.error) for f in h.last.faults] == [("escalate", "no key in the event")]


def test_keyed_context_starts_and_ends_per_key(h: Harness) -> None:
    _request(h, "Q1")
    _request(h, "Q2")
    assert set(h.state("c1").contexts) == {f"pending_quote{KEY_SEP}Q1",
                                           f"pending_quote{KEY_SEP}Q2"}
    h.emit("c1", "quote_sent", {"quote_id": "Q1"})
    check = h.emit("c1", "quote_status_checked", {"quote_id": "Q1"})
    assert _sent(check) == [("any_pending", None)]  # Q2 still pending; Q1 is not
    check = h.emit("c1", "quote_status_checked", {"quote_id": "Q2"})
    assert _sent(check) == [("any_pending", None), ("in_progress", "Q2")]
    h.emit("c1", "quote_sent", {"quote_id": "Q2"})
    assert h.emit("c1", "quote_status_checked", {"quote_id": "Q2"}) == []
    assert h.state("c1").contexts == {}


def test_keyed_context_instances_expire_on_their_own(h: Harness) -> None:
    _request(h, "Q1")
    h.clock.advance("6d")
    _request(h, "Q2")
    h.clock.advance("1d")  # Q1's ttl ran out, Q2's did not
    h.emit("c1", "quote_sent", {"quote_id": "Q9"})  # an unknown quote ends nothing
    decisions = h.emit("c1", "quote_status_checked", {"quote_id": "Q1"})
    assert _sent(decisions) == [("any_pending", None)]
    assert list(h.state("c1").contexts) == [f"pending_quote{KEY_SEP}Q2"]


@pytest.mark.parametrize("quote", [7, 7.0])
def test_a_whole_number_key_names_the_same_instance_as_its_digits(
    h: Harness, quote: float
) -> None:
    _request(h, "7")
    decisions = h.emit("c1", "quote_status_checked", {"quote_id": quote})
    assert ("in_progress", quote) in _sent(decisions)


@pytest.mark.parametrize(
    ("value", "key"),
    [("Q1", "Q1"), (12, "12"), (12.0, "12"), (12.5, None), (True, None), (None, None),
     ([1], None), ("x" * 201, None)],
)
def test_instance_key(value: Any, key: str | None) -> None:
    assert instance_key(value) == key


# -- the wire form: unkeyed as before, keyed follow-ups with a fourth element --------------
_EVENT = {"id": "e", "data": {"quote_id": "Q1"}, "at": 1.0}


def test_an_unkeyed_follow_up_encodes_as_before() -> None:
    st = CustomerState("c", followups=[PendingFollowup("r", 5.0, _EVENT)])
    assert st.to_wire()[11] == [["r", 5.0, _EVENT]]


def test_a_keyed_follow_up_and_context_round_trip() -> None:
    st = CustomerState(
        "c",
        contexts={"in_transit": 9.0, f"pending_quote{KEY_SEP}Q1": 7.0},
        followups=[PendingFollowup("r", 5.0, _EVENT, "Q1"), PendingFollowup("s", 6.0, _EVENT)],
    )
    assert st.to_wire()[11][0] == ["r", 5.0, _EVENT, "Q1"]
    assert decode_state(encode_state(st)) == st


@pytest.mark.parametrize(
    "record", [["r", 5.0, _EVENT, 7], ["r", 5.0, _EVENT, None], ["r", 5.0, _EVENT, "Q", "x"]]
)
def test_a_follow_up_key_that_is_not_text_is_refused(record: list[Any]) -> None:
    wire = CustomerState("c").to_wire()
    wire[11] = [record]
    with pytest.raises(StateDecodeError, match="malformed field followups"):
        decode_state(msgpack.packb(wire, use_bin_type=True))


def test_instances_are_bounded_per_rule_and_context(h: Harness) -> None:
    for n in range(MAX_INSTANCES + 1):
        _request(h, f"Q{n}")
        h.clock.advance("1s")
    st = h.state("c1")
    assert sorted(f.key or "" for f in st.followups) == sorted(
        f"Q{n}" for n in range(1, MAX_INSTANCES + 1))  # the oldest went
    assert f"pending_quote{KEY_SEP}Q0" not in st.contexts
    assert len(st.contexts) == MAX_INSTANCES
