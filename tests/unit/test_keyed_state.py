"""Keyed counters and timestamps: an update with a ``key:`` increments, resets and stamps one
instance per key, read with ``counter(name, key)`` and ``timestamp(name, key)``; bounded per
name (the instance changed longest ago goes); checked at load on every trigger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.errors import RulePackError
from engine.pack.loader import load_pack_text
from engine.pipeline.state_ops import MAX_INSTANCES
from engine.state.wire import decode_state, encode_state
from engine.testing import Harness

PACK = """
channels: [webhook]
consent: {channels: {webhook: none}}
events:
  payment_failed: {data: {order: any}}
  payment_succeeded: {data: {order: str}}
  card_failed: {data: {order: str, card: str}}
  app_opened: {}
updates:
  - on: [payment_failed, card_failed]
    key: event.data.order
    increment: {failed_payments: 1}
  - on: payment_failed
    key: event.data.order
    timestamp: [payment_failed_at]
  - on: payment_succeeded
    key: event.data.order
    reset: [failed_payments]
  - on: payment_failed
    increment: {all_failures: 1}
messages:
  help: {category: internal, channels: [webhook],
         params: {n: "counter('failed_payments', event.data.order)",
                  mins: "minutes_since(timestamp('payment_failed_at', event.data.order))",
                  all: customer.counters.all_failures}}
rules:
  - {id: help, on: [payment_failed, card_failed], send: help}
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer("c1")
    yield harness
    harness.close()


def _failed(h: Harness, order: object) -> dict[str, object]:
    (decision,) = h.emit("c1", "payment_failed", {"order": order})
    return decision.params


def test_each_key_counts_and_stamps_on_its_own(h: Harness) -> None:
    assert _failed(h, "O-1") == {"n": 1.0, "mins": 0.0, "all": 1.0}
    h.clock.advance("10m")
    assert _failed(h, "O-2") == {"n": 1.0, "mins": 0.0, "all": 2.0}
    h.clock.advance("5m")
    assert _failed(h, "O-1") == {"n": 2.0, "mins": 0.0, "all": 3.0}
    (card,) = h.emit("c1", "card_failed", {"order": "O-2", "card": "visa"})
    assert card.params["n"] == 2.0
    st = h.state("c1")
    assert st.counters["all_failures"] == 3  # the unkeyed counter keeps its meaning
    assert "failed_payments" not in st.counters  # no unkeyed instance was ever written


def test_a_whole_number_key_and_its_digits_are_one_instance(h: Harness) -> None:
    _failed(h, 7)
    assert _failed(h, "7")["n"] == 2.0


def test_reset_clears_one_key_only(h: Harness) -> None:
    _failed(h, "O-1")
    _failed(h, "O-2")
    h.emit("c1", "payment_succeeded", {"order": "O-1"})
    assert _failed(h, "O-1")["n"] == 1.0
    assert _failed(h, "O-2")["n"] == 2.0


def test_an_event_with_no_usable_key_changes_no_instance(h: Harness) -> None:
    for bad in (None, True, 1.5, ["O-1"], "x" * 201):
        params = _failed(h, bad)
        assert (params["n"], params["mins"]) == (0, None)  # read with that key: nothing
    st = h.state("c1")
    assert not [k for k in st.counters if k.startswith("failed_payments")]
    assert not st.timestamps


def test_timestamp_reads_one_key_and_is_null_for_a_key_never_set(h: Harness) -> None:
    _failed(h, "O-1")
    h.clock.advance("90m")
    (card,) = h.emit("c1", "card_failed", {"order": "O-1", "card": "visa"})
    assert card.params["mins"] == 90.0  # card_failed counts but does not stamp
    (card,) = h.emit("c1", "card_failed", {"order": "O-2", "card": "visa"})
    assert card.params["mins"] is None


def test_instances_are_bounded_per_name_the_least_recently_changed_goes(h: Harness) -> None:
    for n in range(MAX_INSTANCES):
        _failed(h, f"O{n}")
    _failed(h, "O0")  # O0 changed again: now O1 is the one changed longest ago
    _failed(h, "new")
    st = decode_state(encode_state(h.state("c1")))  # the order survives the wire
    kept = {k.split("\x1f")[1] for k in st.counters if k.startswith("failed_payments")}
    assert len(kept) == MAX_INSTANCES
    assert "O1" not in kept and {"O0", "new", "O2"} <= kept
    stamps = {k for k in st.timestamps if k.startswith("payment_failed_at")}
    assert len(stamps) == MAX_INSTANCES


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("key: event.data.order\n    timestamp", "key: event.data.card\n    timestamp"),
         "the key is read on the trigger 'payment_failed' too: unknown field event.data.card"),
        (("counter('failed_payments'", "counter('failed_paymnts'"),
         "counter(): unknown counter 'failed_paymnts'; did you mean 'failed_payments'?"),
        (("counter('failed_payments'", "counter('all_failures'"),
         "counter(): counter 'all_failures' has no key: (use customer.counters.all_failures)"),
        (("timestamp('payment_failed_at'", "timestamp('failed_payments'"),
         "timestamp(): unknown timestamp 'failed_payments'"),
        (("all: customer.counters.all_failures", "all: customer.counters.failed_payments"),
         "the counter 'failed_payments' is kept per key: read one with "
         "counter('failed_payments', key)"),
        (("reset: [failed_payments]", "reset: [failed_payments]\n    count_in_window: {w: 1h}"),
         "key: applies to increment, reset and timestamp only; move count_in_window to an "
         "update of its own"),
        (("counter('failed_payments', event.data.order)", "counter('failed_payments', 1 > 0)"),
         "argument 2 of counter() cannot be a bool"),
    ],
)
def test_keyed_state_is_checked_at_load(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in PACK
    with pytest.raises(RulePackError) as exc:
        load_pack_text(PACK.replace(old, new, 1))
    assert message in str(exc.value)


def test_a_key_of_another_type_on_one_trigger_is_an_error_there() -> None:
    text = PACK.replace("card_failed: {data: {order: str, card: str}}",
                        "card_failed: {data: {order: bool, card: str}}")
    with pytest.raises(RulePackError) as exc:
        load_pack_text(text)
    assert ("a key must be text or a whole number, but on the trigger 'card_failed' it is a "
            "bool") in str(exc.value)
