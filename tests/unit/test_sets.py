"""Sets (``sets:``): members added and removed by updates, each expiring on its own, bounded
in number; ``customer.sets.<name>`` with ``in`` and ``len``; kept on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from engine.errors import RulePackError, StateDecodeError
from engine.models.state import REQUIRED_FIELDS, CustomerState
from engine.pack.loader import load_pack
from engine.state.salvage import salvage_state
from engine.state.wire import decode_state, encode_state
from engine.testing import Harness

PACK = """
channels: [email, webhook]
consent: {channels: {webhook: none}}
events:
  item_returned: {data: {category: any}}
  return_withdrawn: {data: {category: any}}
  sale: {data: {category: str}}
sets:
  returned: {ttl: 30d, max: 3}
  forever: {}
updates:
  - on: item_returned
    add: {returned: event.data.category, forever: event.data.category}
  - on: return_withdrawn
    remove: {returned: event.data.category}
policies:
  recently_returned:
    when: event.data.category in customer.sets.returned
    suppress: {messages: [sale_msg]}
messages:
  sale_msg: {category: promotion, channels: [email], params: {category: event.data.category}}
  count_msg: {category: internal, channels: [webhook],
              params: {n: len(customer.sets.returned)}}
rules:
  - {id: sale, on: sale, send: sale_msg}
  - {id: count, on: item_returned, send: count_msg}
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    harness.customer("c1", consent={"email": True})
    yield harness
    harness.close()


def _returned(h: Harness, category: object) -> int:
    """Return an item; the count the rule saw right after (the update ran first)."""
    out = h.emit("c1", "item_returned", {"category": category})
    return int(out[0].params["n"])


def _sale(h: Harness, category: str) -> str:
    (decision,) = h.emit("c1", "sale", {"category": category})
    return decision.outcome if decision.outcome == "sent" else ",".join(decision.reasons)


def test_each_member_expires_thirty_days_after_its_own_add(h: Harness) -> None:
    assert _returned(h, "shoes") == 1
    h.clock.advance("18d")
    assert _returned(h, "bags") == 2
    assert _sale(h, "shoes") == "recently_returned"
    assert _sale(h, "coats") == "sent"
    h.clock.advance("12d")  # 30 days after the shoes, 12 after the bags
    assert _sale(h, "shoes") == "sent"
    assert _sale(h, "bags") == "recently_returned"
    h.clock.advance("18d")
    assert _sale(h, "bags") == "sent"
    assert "returned" not in h.state("c1").sets  # expired members pruned, empty set gone
    assert set(h.state("c1").sets["forever"]) == {"shoes", "bags"}  # no ttl: kept


def test_adding_again_restarts_the_members_time(h: Harness) -> None:
    _returned(h, "shoes")
    h.clock.advance("20d")
    assert _returned(h, "shoes") == 1  # a member once
    h.clock.advance("20d")
    assert _sale(h, "shoes") == "recently_returned"


def test_beyond_max_the_oldest_member_goes(h: Harness) -> None:
    for category in ("a", "b", "c"):
        _returned(h, category)
        h.clock.advance("1h")
    _returned(h, "a")  # refreshed: now the newest
    assert _returned(h, "d") == 3
    assert set(h.state("c1").sets["returned"]) == {"a", "c", "d"}


def test_remove_and_lists_and_non_text(h: Harness) -> None:
    assert _returned(h, ["shoes", "bags", 7]) == 2  # a list adds each text member
    h.emit("c1", "return_withdrawn", {"category": ["shoes"]})
    assert _sale(h, "shoes") == "sent"
    assert _sale(h, "bags") == "recently_returned"
    assert _returned(h, 12) == 1  # a number is no member (str(...) makes it text)
    assert _returned(h, None) == 1
    h.emit("c1", "return_withdrawn", {"category": "bags"})
    assert "returned" not in h.state("c1").sets


# -- the wire ---------------------------------------------------------------------------
def test_sets_round_trip_and_a_state_without_them_reads_as_empty() -> None:
    st = CustomerState("c", sets={"returned": {"shoes": 1.0, "bags": 2.5}})
    assert decode_state(encode_state(st)).sets == st.sets
    plain = CustomerState("c")
    assert len(plain.to_wire()) == 13  # no sets: nothing appended
    assert CustomerState.from_wire(plain.to_wire()).sets == {}


def test_extras_after_the_sets_are_kept() -> None:
    st = CustomerState("c", sets={"s": {"m": 1.0}}, extra=("newer", 1))
    back = CustomerState.from_wire(st.to_wire())
    assert back.sets == st.sets and back.extra == ("newer", 1)
    no_sets = CustomerState.from_wire(replace(st, sets={}).to_wire())
    assert no_sets.sets == {} and no_sets.extra == ("newer", 1)


@pytest.mark.parametrize("bad", [["m"], {"s": ["m"]}, {"s": {"m": "x"}}, {"s": {1: 1.0}}])
def test_malformed_sets_are_refused_by_name(bad: object) -> None:
    wire = [*CustomerState("c").to_wire(), bad]
    with pytest.raises(StateDecodeError, match="malformed field sets"):
        CustomerState.from_wire(wire)


def test_salvage_keeps_the_good_sets() -> None:
    # sets, then the other optional fields (empty), then a newer release's element: a
    # state with an extra element writes every optional field
    wire = CustomerState("c", extra=("extra",)).to_wire()
    wire[1 + REQUIRED_FIELDS] = {"good": {"m": 1.0}, "bad": {"m": "x"}}  # sets: the first
    got = salvage_state(msgpack.packb(wire, use_bin_type=True), "c")
    assert got.state.sets == {"good": {"m": 1.0}}
    assert got.state.extra == ("extra",)
    assert [d.split(":")[0] for d in got.dropped] == ["sets"]


# -- load-time checks ---------------------------------------------------------------------
def _error(tmp_path: Path, body: str) -> str:
    """The load errors of PACK with a second file holding ``body``."""
    (tmp_path / "pack.yaml").write_text(PACK, encoding="utf-8")
    (tmp_path / "more.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RulePackError) as exc:
        load_pack(tmp_path)
    return "\n".join(i.render() for i in exc.value.issues)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  - {id: x, on: sale, when: event.data.category in customer.sets.returnd,"
         " send: sale_msg}\n", "unknown set 'returnd'; did you mean 'returned'?"),
        ("  - {id: x, on: sale, when: 5 in customer.sets.returned, send: sale_msg}\n",
         "a int is never in a list of str"),
        ("  - {id: x, on: sale, when: customer.sets.returned.a == 1, send: sale_msg}\n",
         "a set has no fields"),
    ],
)
def test_expressions_on_sets_are_checked(tmp_path: Path, body: str, message: str) -> None:
    assert message in _error(tmp_path, "rules:\n" + body)


def test_an_update_names_a_declared_set_and_gives_text(tmp_path: Path) -> None:
    text = _error(tmp_path, "updates:\n  - {on: sale, add: {retuned: event.data.category}}\n"
                  "  - {on: sale, remove: {returned: 'len(event.data.category)'}}\n")
    assert "more.yaml:2:22: error [updates[0]]: unknown set 'retuned'; did you mean " \
        "'returned'?" in text
    assert "a set holds text, not int" in text


def test_a_set_is_declared_once(tmp_path: Path) -> None:
    assert "set 'forever' is defined twice" in _error(tmp_path, "sets: {forever: {}}\n")
