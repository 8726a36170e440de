"""The state codec on bad input: truncation, foreign versions, wrong types, newer fields;
salvage (``tact state repair``). No Redis needed here."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
import pytest

from engine.errors import StateDecodeError
from engine.models.state import WIRE_VERSION, CustomerState, RecentDecision
from engine.state.salvage import salvage_state
from engine.state.wire import decode_state, encode_state, pack_stored, unpack_stored
from tests.unit.test_state_wire import _full_state

GOOD = _full_state()


def _wire(**changes: Any) -> list[Any]:
    """GOOD's wire list with fields replaced by name."""
    names = ["version_", "customer", "version", "attributes", "consent", "counters", "windows",
             "timestamps", "contexts", "history", "seen", "followups", "last_event"]
    wire = GOOD.to_wire()
    for name, value in changes.items():
        wire[names.index(name)] = value
    return wire


def test_every_cut_of_a_stored_value_is_a_decode_error() -> None:
    value = pack_stored(GOOD, 7)
    for cut in range(len(value)):
        with pytest.raises(StateDecodeError):
            unpack_stored(value[:cut])


def test_every_truncated_wire_list_is_a_decode_error() -> None:
    wire = GOOD.to_wire()
    for n in range(len(wire)):
        with pytest.raises(StateDecodeError, match=r"truncated|empty"):
            CustomerState.from_wire(wire[:n])


@pytest.mark.parametrize("version", [WIRE_VERSION + 1, 7, 0, -1])
def test_another_wire_version_is_refused(version: int) -> None:
    blob = msgpack.packb([version, *GOOD.to_wire()[1:]], use_bin_type=True)
    with pytest.raises(StateDecodeError, match=f"unsupported wire version {version}"):
        decode_state(blob)


@pytest.mark.parametrize("version", [True, "1", 1.0, None])
def test_a_wire_version_of_another_type_is_refused(version: Any) -> None:
    with pytest.raises(StateDecodeError, match="not a customer state"):
        CustomerState.from_wire([version, *GOOD.to_wire()[1:]])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer", 12),
        ("version", "3"),
        ("version", True),
        ("version", -1),
        ("attributes", ["a"]),
        ("attributes", {1: "x"}),
        ("consent", {"push": "yes"}),  # truthy: would read as consent given
        ("consent", {"push": 1}),
        ("consent", [True]),
        ("counters", {"n": "3"}),
        ("counters", {"n": None}),
        ("windows", {"w": 1.0}),
        ("windows", {"w": [1.0, "x"]}),
        ("timestamps", {"t": [1.0]}),
        ("contexts", {"c": {}}),
        ("history", {"a": 1}),
        ("history", [["m", "push", "promotion"]]),
        ("history", [["m", "push", "promotion", 1.0, "more"]]),
        ("history", [["m", "push", 3, 1.0]]),
        ("history", [["m", "push", "promotion", "today"]]),
        ("history", ["mpc1"]),  # four characters: a row that is not a list
        ("seen", {"e": "x"}),
        ("followups", [["r", 1.0]]),
        ("followups", [["r", "soon", {}]]),
        ("followups", [["r", 1.0, {"data": "x"}]]),
        ("followups", [["r", 1.0, {"at": "noon", "data": {}}]]),
        ("followups", [["r", 1.0, {1: 2}]]),
        ("last_event", "yesterday"),
        ("last_event", None),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_by_name(field: str, value: Any) -> None:
    blob = msgpack.packb(_wire(**{field: value}), use_bin_type=True, strict_types=False)
    with pytest.raises(StateDecodeError, match=f"malformed field {field}"):
        decode_state(blob)


def test_extra_fields_of_a_newer_release_are_kept_and_written_back() -> None:
    extra = ["tier-2", {"loyalty": [1, 2]}, None, b"\x00raw"]
    # a newer release writes every field this one knows (optional ones too), then its own
    known = replace(GOOD, recent=[RecentDecision("d1", 5.0, "r", "m", "push", "sent",
                                                 []).pack()])
    blob = msgpack.packb([*known.to_wire(), *extra], use_bin_type=True)
    state = decode_state(blob)
    assert state.extra == tuple(extra)
    assert encode_state(state) == blob  # byte for byte, extras after the known fields
    state.counters["app_open"] += 1  # the core changes the state: extras still go back
    again = unpack_stored(pack_stored(state, 9))
    assert again.extra == tuple(extra) and again.counters["app_open"] == 4


def test_a_fresh_state_writes_no_extra_elements() -> None:
    assert len(CustomerState("c").to_wire()) == 13


@pytest.mark.parametrize(
    "blob",
    [msgpack.packb(msgpack.ExtType(5, b"x")), msgpack.packb([1, 2]) + b"\xc1",
     b"\x93\xc4", b"\xdd\xff\xff\xff\xff"],
)
def test_garbage_is_a_decode_error(blob: bytes) -> None:
    with pytest.raises(StateDecodeError):
        decode_state(blob)


# -- salvage (tact state repair) -----------------------------------------------------------
def test_salvage_keeps_the_fields_before_the_cut() -> None:
    blob = encode_state(GOOD)
    cut = blob[: len(msgpack.packb(GOOD.to_wire()[:9], use_bin_type=True)) + 5]  # into history
    got = salvage_state(cut, "c-1")
    assert got.truncated
    st = got.state
    assert (st.attributes, st.consent, st.contexts) == (GOOD.attributes, GOOD.consent,
                                                        GOOD.contexts)
    assert st.history == [] and st.seen == {} and st.followups == []
    assert got.dropped == ["missing (blob cut short): history, seen, followups, last_event"]
    assert decode_state(encode_state(st)) == st  # what repair writes decodes


def test_salvage_drops_only_the_entries_of_the_wrong_type() -> None:
    bad_history = [["m", "push", "promotion", 1.0], ["m", 2, "x", 1.0]]
    wire = _wire(consent={"push": True, "email": "yes"}, history=bad_history,
                 last_event="x", windows={"w": [1.0], "v": ["x"]})
    recent: list[Any] = []  # the optional field(s) GOOD leaves out, before a newer one's
    got = salvage_state(msgpack.packb([*wire, recent, "extra"], use_bin_type=True), "c-1")
    assert got.state.consent == {"push": True}
    assert [h.message for h in got.state.history] == ["m"]
    assert got.state.windows == {"w": [1.0]}
    assert got.state.last_event == 0.0
    assert got.state.extra == ("extra",)
    assert got.state.counters == GOOD.counters
    assert [d.split(":")[0] for d in got.dropped] == ["consent", "windows", "history",
                                                      "last_event"]
    assert got.dropped[0].startswith("consent: 1 of 2 entries dropped")


@pytest.mark.parametrize(
    ("blob", "reason"),
    [(msgpack.packb([WIRE_VERSION + 1, "c-1"]), "unsupported wire version"),
     (msgpack.packb([WIRE_VERSION, "c-2", 1]), "another customer"),
     (b"\xc1\xc1", "nothing decodes"),
     (msgpack.packb({"a": 1}), "nothing decodes")],
)
def test_salvage_refuses_what_it_cannot_interpret(blob: bytes, reason: str) -> None:
    with pytest.raises(StateDecodeError, match=reason):
        salvage_state(blob, "c-1")
