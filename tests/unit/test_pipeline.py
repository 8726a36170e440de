"""Pipeline behaviour beyond the shared scenarios, through the shipped testing harness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.models.decision import decision_id
from engine.pipeline import decide
from engine.pipeline.policies import in_holdout
from engine.testing import Harness

PACK = """
channels: [push, email]
events:
  app_open: {}
  payment_failed: {data: {order: str}}
  profile_updated: {data: {attributes: map, consent: map}}
  cart_updated: {data: {items: int}}
  purchase: {data: {value: number}}
  login: {}
attributes: {tz: str, segment: str, score: int}
updates:
  - on: payment_failed
    count_in_window: {failures: 10m}
  - on: profile_updated
    merge_attributes: event.data.attributes
    merge_consent: event.data.consent
  - on: purchase
    increment: {purchases: 1, spent: event.data.value}
    timestamp: [last_purchase]
contexts:
  vip: {ttl: 1h, start: [{on: purchase, when: event.data.value >= 100}]}
messages:
  help: {category: service, channels: [email], params: {n: customer.windows.failures}}
  hello: {category: promotion, channels: [push, email], params: {seg: customer.attributes.segment}}
  vip_welcome: {category: service, channels: [push]}
  reminder: {category: promotion, channels: [push], params: {items: event.data.items}}
  bad: {category: service, channels: [push], params: {x: event.data.items + 1}}
rules:
  - {id: help_after_three, on: payment_failed, when: customer.windows.failures >= 3, send: help}
  - {id: hello_on_login, on: login, send: hello, priority: 5}
  - {id: vip_on_login, on: login, when: context.vip and customer.counters.purchases >= 1,
     send: vip_welcome, priority: 9}
  - {id: remind, on: cart_updated, after: 30m, unless: [purchase], send: reminder}
  - {id: everyone_held_out, on: app_open, send: {message: hello, channels: [push]},
     holdout: {percent: 100, salt: s}}
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer(
        "c1", attributes={"tz": "UTC", "segment": "new"}, consent={"push": True, "email": True}
    )
    yield harness
    harness.close()


def test_windowed_counts_slide_with_event_time(h: Harness) -> None:
    assert h.emit("c1", "payment_failed", {"order": "o"}) == []
    h.clock.advance("4m")
    h.emit("c1", "payment_failed", {"order": "o"})
    h.clock.advance("4m")
    (d,) = h.emit("c1", "payment_failed", {"order": "o"})
    assert (d.message, d.outcome, d.params) == ("help", "sent", {"n": 3})
    h.clock.advance("7m")  # the first two fall out of the 10 minute window
    assert h.emit("c1", "payment_failed", {"order": "o"}) == []
    assert h.state("c1").windows["failures"] == [
        pytest.approx(h.clock.ts - 7 * 60),
        pytest.approx(h.clock.ts),
    ]


def test_profile_updates_set_attributes_and_consent(h: Harness) -> None:
    h.emit(
        "c1",
        "profile_updated",
        {
            "attributes": {"segment": "vip", "nested": {"no": 1}},
            "consent": {"email": False, "push": "yes"},
        },
    )
    st = h.state("c1")
    assert st.attributes["segment"] == "vip"
    assert "nested" not in st.attributes  # only scalars are merged
    assert st.consent == {"push": True, "email": False}  # non-boolean consent is ignored
    decisions = h.emit("c1", "login")
    by_channel = {d.channel: d for d in decisions}
    assert by_channel["push"].outcome == "sent"
    assert by_channel["push"].params == {"seg": "vip"}
    assert by_channel["email"].reasons == ["no_consent"]


def test_counters_timestamps_and_conditional_contexts(h: Harness) -> None:
    h.emit("c1", "purchase", {"value": 50})
    assert "vip" not in h.state("c1").contexts
    h.emit("c1", "purchase", {"value": 150})
    st = h.state("c1")
    assert st.counters == {"purchases": 2, "spent": 200}
    assert st.timestamps["last_purchase"] == h.clock.ts
    sent = {d.message for d in h.emit("c1", "login") if d.outcome == "sent"}
    assert sent == {"vip_welcome", "hello"}  # vip on push outranks hello; hello goes by email
    h.clock.advance("2h")  # the context's ttl passed
    sent = {(d.message, d.channel) for d in h.emit("c1", "login") if d.outcome == "sent"}
    assert ("vip_welcome", "push") not in sent


def test_follow_up_rearms_and_is_cancelled(h: Harness) -> None:
    h.emit("c1", "cart_updated", {"items": 1})
    h.clock.advance("20m")
    h.emit("c1", "cart_updated", {"items": 3})  # re-arms: due 30m from now
    assert h.advance("15m") == []
    (d,) = h.advance("15m")
    assert (d.message, d.params) == ("reminder", {"items": 3})
    assert h.advance("1h") == []  # fired once
    h.emit("c1", "cart_updated", {"items": 2})
    h.clock.advance("5m")
    h.emit("c1", "purchase", {"value": 5})
    assert h.advance("1h") == []
    assert h.state("c1").followups == []


def test_follow_up_fires_before_a_later_event_of_the_same_customer(h: Harness) -> None:
    h.emit("c1", "cart_updated", {"items": 2})
    h.clock.advance("45m")  # no tick: the next event's time passes the due time
    decisions = h.emit("c1", "login")
    assert next(d.message for d in decisions) == "reminder"
    assert decisions[0].decided_at.timestamp() == h.clock.ts - 15 * 60  # at its due time


def test_holdout_is_deterministic(h: Harness) -> None:
    (d,) = h.emit("c1", "app_open")
    assert d.reasons == ["holdout"]
    group = [c for c in (f"c{i}" for i in range(2000)) if in_holdout(c, 10, "salt")]
    assert 120 < len(group) < 280  # about 10%
    assert group == [c for c in (f"c{i}" for i in range(2000)) if in_holdout(c, 10, "salt")]


def test_decisions_are_deterministic_and_stamped(h: Harness) -> None:
    decisions = h.emit("c1", "login", id="ev-42")
    for d in decisions:
        assert d.id == decision_id("ev-42", d.rule, d.channel)
        assert d.rules_version == h.pack.version and len(d.rules_version) == 12
        assert d.event_id == "ev-42"


def test_replay_gives_the_same_decisions() -> None:
    runs = []
    for _ in range(2):
        h = Harness.from_text(PACK)
        h.customer("c1", attributes={"tz": "UTC"}, consent={"push": True, "email": True})
        for i in range(3):
            h.emit("c1", "payment_failed", {"order": str(i)}, id=f"p{i}")
            h.emit("c1", "login", id=f"l{i}")
            h.clock.advance("3m")
        runs.append([d.model_dump() for d in h.sink.decisions])
        h.close()
    assert runs[0] == runs[1] and runs[0]


def test_duplicates_are_not_decided_again(h: Harness) -> None:
    first = h.emit("c1", "login", id="dup")
    assert first
    assert h.emit("c1", "login", id="dup") == []
    assert h.last is not None and h.last.outcomes[0].status == "duplicate"


def test_a_batch_is_one_read_and_one_write(h: Harness) -> None:
    batch = [h.source.envelope(h.source.event(f"x{i}", "login")) for i in range(50)]
    reads, writes = h.store.reads, h.store.writes
    h.process(batch)
    assert (h.store.reads - reads, h.store.writes - writes) == (1, 1)
    assert h.last is not None and len(h.last.changed) == 50


def test_bad_data_makes_conditions_false_and_params_null() -> None:
    h = Harness.from_text(
        PACK.replace(
            "send: reminder}",
            "send: reminder}\n"
            "  - {id: boom, on: cart_updated, when: "
            "event.data.items != 0, send: bad}",
        )
    )
    h.customer("c1", consent={"push": True})
    (d,) = h.emit("c1", "cart_updated", {"items": "three"})  # wrong type on the wire
    assert (d.rule, d.outcome, d.params) == ("boom", "sent", {"x": None})
    assert h.last is not None and h.last.faults == []
    (d,) = h.emit("c1", "cart_updated", {"items": 2})
    assert d.params == {"x": 3}
    h.close()


def test_state_of_other_customers_is_untouched() -> None:
    h = Harness.from_text(PACK)
    h.customer("c1", consent={"push": True})
    h.emit("c1", "purchase", {"value": 1})
    assert h.state("c2").counters == {}
    h.close()


def test_decide_creates_states_for_new_customers() -> None:
    h = Harness.from_text(PACK)
    states: dict = {}
    env = h.source.envelope(h.source.event("new", "login"))
    result = decide(h.pack, states, [env])
    assert "new" in states and result.changed == {"new"}
    assert {d.reasons[0] for d in result.decisions} == {"no_consent"}
    h.close()


def test_trusted_decisions_equal_validated_ones(h: Harness) -> None:
    from engine.models.decision import Decision

    for d in h.emit("c1", "login"):
        validated = Decision.model_validate_json(d.to_json())
        assert validated == d
        assert validated.model_dump() == d.model_dump()
        assert Decision.model_construct(**d.model_dump()) == d
