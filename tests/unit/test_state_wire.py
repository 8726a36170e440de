"""CustomerState's msgpack wire form: what both state stores keep (no Redis needed here)."""

from __future__ import annotations

import msgpack
import pytest

from engine.models.state import WIRE_VERSION, CustomerState, PendingFollowup, SentRecord
from engine.state.wire import decode_state, encode_state, pack_stored, unpack_stored


def _full_state(customer: str = "c-1", version: int = 7) -> CustomerState:
    return CustomerState(
        customer=customer,
        version=version,
        attributes={
            "segment": "frequent_flyer",
            "tz": "Europe/Rome",
            "points_expiring_days": 5,
            "vip": True,
            "score": 0.1,
            "nested": {"a": [1, 2.5, "x", None, {"b": False}]},
            "big": 2**53 + 1,
            "name": "Zoë 🚀",
        },
        consent={"push": True, "email": False, "sms": True},
        counters={"app_open": 3, "spend": 120.75},
        windows={"payment_failed": [1_780_000_000.0, 1_780_000_030.5, 1_780_000_061.25]},
        timestamps={"last_purchase": 1_779_999_000.0},
        contexts={"in_transit": 1_780_007_200.0, "open_complaint": 1_780_500_000.0},
        history=[
            SentRecord("travel_tips", "push", "service", 1_780_000_000.0),
            SentRecord("flash_sale", "email", "promotion", 1_780_000_100.5),
        ],
        seen={"ev-1": 1_780_000_000.0, "ev-2": 1_780_000_030.5},
        followups=[
            PendingFollowup(
                "cart_reminder",
                1_780_001_800.0,
                {"id": "ev-9", "type": "cart_updated", "data": {"items": 2, "value": 89.9}},
            ),
            PendingFollowup("csat_later", 1_780_086_400.0, {"type": "x", "data": {}}),
        ],
        last_event=1_780_000_061.25,
    )


def _assert_same(got: CustomerState, want: CustomerState) -> None:
    assert got == want
    assert all(isinstance(h, SentRecord) for h in got.history)
    assert all(isinstance(f, PendingFollowup) for f in got.followups)
    assert got.attributes["vip"] is True  # a bool stays a bool, not 1
    assert isinstance(got.counters["app_open"], int)
    assert isinstance(got.counters["spend"], float)


def test_to_wire_is_plain_msgpack_data_and_round_trips() -> None:
    state = _full_state()
    wire = state.to_wire()
    assert wire[0] == WIRE_VERSION
    raw = msgpack.packb(wire)
    back = CustomerState.from_wire(msgpack.unpackb(raw, strict_map_key=False))
    _assert_same(back, state)
    assert back.next_due() == 1_780_001_800.0


def test_encode_decode_round_trip() -> None:
    state = _full_state()
    _assert_same(decode_state(encode_state(state)), state)


def test_fresh_state_round_trips() -> None:
    fresh = CustomerState("c-new")
    assert decode_state(encode_state(fresh)) == fresh
    assert fresh.next_due() is None


def test_encode_can_write_another_version_without_touching_the_state() -> None:
    state = _full_state(version=3)
    back = decode_state(encode_state(state, version=4))
    assert back.version == 4
    assert state.version == 3
    back.version = 3
    assert back == state


def test_decoded_state_shares_nothing_with_the_original() -> None:
    state = _full_state()
    back = decode_state(encode_state(state))
    back.followups[0].event["data"]["items"] = 99
    back.windows["payment_failed"].append(1.0)
    assert state.followups[0].event["data"]["items"] == 2
    assert len(state.windows["payment_failed"]) == 3


def test_stored_value_has_a_version_header() -> None:
    state = _full_state(version=41)
    value = pack_stored(state, 42)
    assert value[:16] == b"000000000000002a"
    assert value[16:] == encode_state(state, version=42)
    back = unpack_stored(value)
    assert back.version == 42
    back.version = 41
    _assert_same(back, state)


@pytest.mark.parametrize(
    "value", [b"", b"00000000", b"0000000z00000001" + b"\x90", b" 00000000000001" + b"\x90"]
)
def test_unreadable_stored_values_raise_value_error(value: bytes) -> None:
    with pytest.raises(ValueError):
        unpack_stored(value)


def test_pack_stored_rejects_a_negative_version() -> None:
    with pytest.raises(ValueError):
        pack_stored(CustomerState("c-1"), -1)


@pytest.mark.parametrize(
    "blob",
    [
        b"\xc1",  # never used in msgpack
        b"",
        msgpack.packb({"not": "a list"}),
        msgpack.packb([WIRE_VERSION + 1, "c-1"]),  # a wire version this code cannot read
        msgpack.packb([WIRE_VERSION, "c-1"]),  # truncated
        msgpack.packb([1, 2, 3], use_bin_type=True) + b"extra",
    ],
)
def test_unreadable_blobs_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_state(blob)
