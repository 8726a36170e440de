"""Stored values are encoded with msgspec's msgpack encoder (issue 13: about half the CPU of
``msgpack.packb``); the bytes must stay exactly those msgpack writes, so that values written
before and after the change, by any worker, read and compare alike."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.models.packing import pack_wire
from engine.models.state import CustomerState, RecentDecision, Touch
from engine.state.wire import VERSION_DIGITS, encode_state, pack_stored
from tests.unit.test_fuzz_state import FUZZ, json_like, names, states, times

recents = st.builds(RecentDecision, st.text(max_size=12), times, names, names, names,
                    st.sampled_from(["sent", "suppressed"]), st.lists(names, max_size=3))
touches = st.builds(Touch, names, names, names, times, st.sampled_from(["sent", "holdout"]),
                    times)


@st.composite
def full_states(draw: st.DrawFn) -> CustomerState:
    """The fuzz suite's states with the optional fields too (sets, touches, bounced, recent,
    the recent decisions both as this batch's objects and as packed bytes)."""
    state: CustomerState = draw(states)
    state.sets = draw(st.dictionaries(names, st.dictionaries(names, times, max_size=3),
                                      max_size=2))
    state.touches = draw(st.lists(touches, max_size=2))
    state.bounced = draw(st.dictionaries(names, times, max_size=2))
    made = draw(st.lists(recents, max_size=4))
    state.recent = [r.pack() if i % 2 else r for i, r in enumerate(made)]
    return state


def _reference(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


@FUZZ
@given(full_states())
def test_a_state_encodes_to_the_bytes_msgpack_writes(state: CustomerState) -> None:
    encoded = encode_state(state)
    # the reference: every recent decision packed as msgpack packs it, then the whole
    state.recent = [r if type(r) is bytes else _reference(
        [r.id, r.at, r.rule, r.message, r.channel, r.outcome, r.reasons])
        for r in state.recent]
    assert encoded == _reference(state.to_wire())
    assert pack_stored(state, 7)[VERSION_DIGITS:] == encode_state(state, version=7)


@FUZZ
@given(recents)
def test_a_recent_decision_packs_as_msgpack_does(recent: RecentDecision) -> None:
    assert recent.pack() == _reference([recent.id, recent.at, recent.rule, recent.message,
                                        recent.channel, recent.outcome, recent.reasons])
    assert RecentDecision.unpack(recent.pack()) == recent


@FUZZ
@given(json_like)
def test_any_wire_value_packs_as_msgpack_does(value: Any) -> None:
    assert pack_wire(value) == _reference(value)


@pytest.mark.parametrize("value, error", [
    (object(), TypeError),  # no msgpack type: the batch is split around its event
    (2**64, OverflowError),
    (-(2**63) - 1, OverflowError),
    ("\ud800", UnicodeEncodeError),
])
def test_a_value_msgpack_cannot_hold_is_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        pack_wire({"a": [value]})
    state = CustomerState("c-1", attributes={"x": value})
    with pytest.raises(error):
        encode_state(state)
