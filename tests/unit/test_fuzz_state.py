"""Fuzzing the state codec with Hypothesis: garbage and mutated blobs raise only
:class:`StateDecodeError`; every valid state round-trips exactly.

``TACT_FUZZ_EXAMPLES`` sets the examples per property (default 150: about 10 s in all);
e.g. ``TACT_FUZZ_EXAMPLES=20000 pytest tests/unit/test_fuzz_state.py`` for a long run.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import StateDecodeError
from engine.models.state import CustomerState, PendingFollowup, SentRecord
from engine.state.salvage import salvage_state
from engine.state.wire import decode_state, encode_state, pack_stored, unpack_stored

EXAMPLES = int(os.environ.get("TACT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- valid states ------------------------------------------------------------------------------
names = st.text(max_size=12)
numbers = st.one_of(st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(names, inner, max_size=4)),
    max_leaves=12,
)
times = st.floats(allow_nan=False)
event_views = st.fixed_dictionaries(
    {"id": st.text(max_size=10), "type": names, "at": times, "received": times,
     "data": st.dictionaries(names, json_like, max_size=4)})
states = st.builds(
    CustomerState,
    customer=st.text(min_size=1, max_size=20),
    version=st.integers(0, 2**63),
    attributes=st.dictionaries(names, json_like, max_size=6),
    consent=st.dictionaries(names, st.booleans(), max_size=4),
    counters=st.dictionaries(names, numbers, max_size=4),
    windows=st.dictionaries(names, st.lists(times, max_size=5), max_size=3),
    timestamps=st.dictionaries(names, times, max_size=3),
    contexts=st.dictionaries(names, times, max_size=3),
    history=st.lists(st.builds(SentRecord, names, names, names, times), max_size=6),
    seen=st.dictionaries(names, times, max_size=6),
    followups=st.lists(st.builds(PendingFollowup, names, times, event_views), max_size=3),
    last_event=times,
    extra=st.lists(json_like, max_size=3).map(tuple),
    campaigns=st.dictionaries(names, times, max_size=3),
)


@FUZZ
@given(states)
def test_every_valid_state_round_trips_exactly(state: CustomerState) -> None:
    assert CustomerState.from_wire(state.to_wire()) == state
    back = decode_state(encode_state(state))
    assert back == state
    assert unpack_stored(pack_stored(state, state.version)) == state
    assert encode_state(back) == encode_state(state)  # extras and all, byte for byte


# -- garbage -----------------------------------------------------------------------------------
def _only_decode_errors(value: bytes) -> None:
    for decode in (unpack_stored, decode_state):
        with contextlib.suppress(StateDecodeError):
            decode(value)
    try:
        salvaged = salvage_state(value, "c-1")
    except StateDecodeError:
        return
    # what repair would write always decodes again
    assert decode_state(encode_state(salvaged.state)) == salvaged.state


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_errors(value: bytes) -> None:
    _only_decode_errors(value)
    _only_decode_errors(b"%016x" % 3 + value)  # behind a valid header


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid stored value, then some bytes flipped, cut, inserted or deleted."""
    state = draw(states)
    value = bytearray(pack_stored(state, draw(st.integers(0, 2**32))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(len(value) - 1, 0)))
        if op == "flip" and value:
            value[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del value[at:]
        elif op == "insert":
            value[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif value:
            del value[at:at + draw(st.integers(1, 8))]
    return bytes(value)


@FUZZ
@given(mutated())
def test_mutated_stored_values_raise_only_decode_errors(value: bytes) -> None:
    _only_decode_errors(value)
    _only_decode_errors(value[16:])


@st.composite
def retyped(draw: st.DrawFn) -> list[Any]:
    """A valid wire list with one element (or one nested element) replaced by any value."""
    wire = draw(states).to_wire()
    at = draw(st.integers(0, len(wire) - 1))
    anything = draw(json_like)
    if isinstance(wire[at], dict) and wire[at] and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(wire[at], key=repr)))
        wire[at][key] = anything
    elif isinstance(wire[at], list) and wire[at] and draw(st.booleans()):
        wire[at][draw(st.integers(0, len(wire[at]) - 1))] = anything
    else:
        wire[at] = anything
    return wire


@FUZZ
@given(retyped())
def test_a_retyped_field_decodes_only_into_the_declared_types(wire: list[Any]) -> None:
    blob = msgpack.packb(wire, use_bin_type=True)
    try:
        state = decode_state(blob)
    except StateDecodeError:
        return
    # accepted: then it is a state the core can work with, and it round-trips
    assert all(type(v) is bool for v in state.consent.values())
    assert all(type(v) in (int, float, bool) for v in state.counters.values())
    assert all(isinstance(h.at, int | float) and isinstance(h.channel, str)
               for h in state.history)
    assert all(isinstance(f.event.get("data", {}), dict) for f in state.followups)
    assert decode_state(encode_state(state)) == state
