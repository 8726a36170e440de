"""Maps (``maps:``): values of a declared type under keys, written by ``put:`` and taken out
by ``remove:``, each entry expiring on its own, bounded in number; ``customer.maps.<name>``
with ``[key]``, ``in`` and ``len``, all type-checked at load; kept on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import msgpack
import pytest

from engine.errors import RulePackError
from engine.models.state import OPTIONAL_WIRE_FIELDS, CustomerState
from engine.pack.loader import load_pack_text as load_pack
from engine.state.salvage import salvage_state
from engine.state.wire import decode_state, encode_state
from engine.testing import Harness

PACK = """
channels: [email, webhook]
consent: {channels: {webhook: none}}
events:
  product_viewed: {data: {sku: any, price: any}}
  wishlist_cleared: {data: {sku: any}}
  price_dropped: {data: {sku: str, price: float}}
maps:
  last_viewed_price: {ttl: 30d, max: 3, value: float}
  forever: {value: str}
updates:
  - on: product_viewed
    put: {map: last_viewed_price, key: event.data.sku, value: event.data.price}
  - on: product_viewed
    put: [{map: forever, key: event.data.sku, value: "'seen'"}]
  - on: wishlist_cleared
    remove: {last_viewed_price: event.data.sku}
messages:
  drop_msg: {category: promotion, channels: [email],
             params: {was: "customer.maps.last_viewed_price[event.data.sku]"}}
  count_msg: {category: internal, channels: [webhook],
              params: {n: len(customer.maps.last_viewed_price),
                       seen: event.data.sku in customer.maps.last_viewed_price}}
rules:
  - id: drop
    on: price_dropped
    when: event.data.price < customer.maps.last_viewed_price[event.data.sku]
    send: drop_msg
  - {id: count, on: product_viewed, send: count_msg}
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer("c1", consent={"email": True})
    yield harness
    harness.close()


def _viewed(h: Harness, sku: object, price: object) -> int:
    """View a product; how many entries the rule saw right after (the update ran first)."""
    out = h.emit("c1", "product_viewed", {"sku": sku, "price": price})
    return int(out[0].params["n"])


def _drop(h: Harness, sku: str, price: float) -> float | None:
    """A price drop: the price last viewed when the drop message goes, None when silent."""
    out = h.emit("c1", "price_dropped", {"sku": sku, "price": price})
    return float(out[0].params["was"]) if out and out[0].outcome == "sent" else None


def test_a_value_is_read_by_its_key_until_its_own_ttl_ends(h: Harness) -> None:
    assert _viewed(h, "A", 100) == 1
    h.clock.advance("20d")
    assert _viewed(h, "B", 50) == 2
    assert _drop(h, "A", 90) == 100.0
    assert _drop(h, "A", 110) is None  # not a drop
    assert _drop(h, "C", 1) is None  # never viewed: null, no drop
    h.clock.advance("10d")  # 30 days after A, 10 after B
    assert _drop(h, "A", 90) is None
    assert _drop(h, "B", 40) == 50.0
    h.clock.advance("21d")
    assert _drop(h, "B", 40) is None
    assert "last_viewed_price" not in h.state("c1").maps  # expired entries pruned
    assert set(h.state("c1").maps["forever"]) == {"A", "B"}  # no ttl: kept


def test_putting_again_replaces_the_value_and_restarts_its_time(h: Harness) -> None:
    _viewed(h, "A", 100)
    h.clock.advance("25d")
    assert _viewed(h, "A", 80) == 1  # the same key: one entry
    h.clock.advance("25d")  # 50 days after the first view, 25 after the second
    assert _drop(h, "A", 70) == 80.0


def test_a_whole_number_key_is_the_same_key_as_its_digits(h: Harness) -> None:
    _viewed(h, 42, 10)
    out = h.emit("c1", "product_viewed", {"sku": "42", "price": 9})
    assert out[0].params == {"n": 1, "seen": True}
    assert _drop(h, "42", 5) == 9.0


def test_beyond_max_the_oldest_entry_goes(h: Harness) -> None:
    for sku in "ABC":
        _viewed(h, sku, 10)
        h.clock.advance("1h")
    assert _viewed(h, "A", 10) == 3  # A put again: now the newest
    h.clock.advance("1h")
    assert _viewed(h, "D", 10) == 3  # B, the oldest, went
    assert set(h.state("c1").maps["last_viewed_price"]) == {"A", "C", "D"}


def test_remove_takes_one_key_out(h: Harness) -> None:
    _viewed(h, "A", 10)
    _viewed(h, "B", 10)
    h.emit("c1", "wishlist_cleared", {"sku": "A"})
    assert set(h.state("c1").maps["last_viewed_price"]) == {"B"}
    h.emit("c1", "wishlist_cleared", {"sku": "B"})
    assert "last_viewed_price" not in h.state("c1").maps  # empty: gone


def test_a_value_or_key_of_the_wrong_kind_puts_nothing(h: Harness) -> None:
    for sku, price in (("A", "cheap"), ("A", None), ("A", True), (None, 10), ([1], 10),
                       ("A", float("nan")), ("x" * 201, 10)):
        assert _viewed(h, sku, price) == 0
    assert "last_viewed_price" not in h.state("c1").maps


def test_a_late_event_does_not_overwrite_a_newer_value(h: Harness) -> None:
    _viewed(h, "A", 100)
    h.clock.advance(timedelta(minutes=-30))  # an event from before the view, arriving after
    _viewed(h, "A", 120)
    assert h.state("c1").maps["last_viewed_price"]["A"][0] == 100.0


def test_maps_round_trip_on_the_wire_and_older_states_read_as_none() -> None:
    st = CustomerState("c1", maps={"m": {"A": [1.5, 10.0], "7": ["x", 11]}})
    assert decode_state(encode_state(st)).maps == st.maps
    assert [name for name, _ in OPTIONAL_WIRE_FIELDS][4] == "maps"
    assert decode_state(encode_state(CustomerState("c1"))).maps == {}
    wire = st.to_wire()
    wire[-1] = {"m": {"A": [[1], 10.0], "B": [2.0, 3.0]}}  # one entry of a wrong shape
    salvaged = salvage_state(msgpack.packb(wire), "c1")
    assert salvaged.state.maps == {}  # the map holding it went, named
    assert any(d.startswith("maps:") for d in salvaged.dropped)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("params: {x: 'customer.maps.last_viewd_price[event.data.sku]'}",
         "unknown map 'last_viewd_price'; did you mean 'last_viewed_price'?"),
        ("params: {x: customer.maps.last_viewed_price.foo}",
         "read a map's value by its key: customer.maps.last_viewed_price[key]"),
        ("params: {x: 'customer.maps.last_viewed_price[event.data.price > 1]'}",
         "a map's key is text or a whole number, not bool"),
        ("params: {x: 'customer.maps.last_viewed_price[event.data.sku] + \"a\"'}",
         "Add between float and str is not allowed"),
        ("params: {x: 'true in customer.maps.last_viewed_price'}",
         "a map's keys are text or whole numbers, never a bool"),
    ],
)
def test_reads_are_type_checked_at_load(snippet: str, message: str) -> None:
    text = PACK.replace("params: {was: \"customer.maps.last_viewed_price[event.data.sku]\"}",
                        snippet)
    with pytest.raises(RulePackError) as exc:
        load_pack(text)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ("put: {map: last_viewd_price, key: event.data.sku, value: '1.0'}",
         "unknown map 'last_viewd_price'; did you mean 'last_viewed_price'?"),
        ("put: {map: last_viewed_price, key: event.data.sku, value: \"'cheap'\"}",
         "map 'last_viewed_price' holds float values, not str"),
        ("put: {map: last_viewed_price, key: 'event.data.price > 1', value: '1.0'}",
         "a key must be text or a whole number, but on the trigger 'price_dropped' it is a "
         "bool"),
        ("put: {map: last_viewed_price, key: event.data.skew, value: '1.0'}",
         "the key is read on the trigger 'price_dropped' too: unknown field event.data.skew"),
        ("remove: {last_viewed_pric: event.data.sku}", "unknown set 'last_viewed_pric'"),
    ],
)
def test_writes_are_type_checked_at_load(update: str, message: str) -> None:
    text = PACK.replace("updates:\n", f"updates:\n  - on: price_dropped\n    {update}\n")
    with pytest.raises(RulePackError) as exc:
        load_pack(text)
    assert message in str(exc.value)


def test_a_map_and_a_set_may_not_share_a_name() -> None:
    with pytest.raises(RulePackError) as exc:
        load_pack(PACK + "sets:\n  forever: {}\n")
    assert "'forever' is a set's name too" in str(exc.value)


def test_remove_takes_a_list_of_keys_out(h: Harness) -> None:
    for sku in "ABC":
        _viewed(h, sku, 10)
    h.emit("c1", "wishlist_cleared", {"sku": ["A", 7, "C", None]})  # what is no key is skipped
    assert set(h.state("c1").maps["last_viewed_price"]) == {"B"}


def test_remove_of_a_map_is_type_checked_as_one_key_or_a_list() -> None:
    events = "events:\n  basket_emptied: {data: {skus: list, at: time}}\n"
    update = "  - {on: basket_emptied, remove: {last_viewed_price: event.data.skus}}\n"
    text = PACK.replace("events:\n", events).replace("updates:\n", "updates:\n" + update)
    assert load_pack(text).updates["basket_emptied"]
    with pytest.raises(RulePackError) as exc:
        load_pack(text.replace("event.data.skus}", "event.data.at}"))
    assert ("a key must be text or a whole number, or a list of them, but on the trigger "
            "'basket_emptied' it is a time") in str(exc.value)
