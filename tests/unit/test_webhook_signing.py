"""X-Tact-Signature: round trip, tamper detection, replay window, malformed headers."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import SecretStr

from connectors.webhook import (
    SignatureError,
    SignatureVerifier,
    sign,
    signature_header,
    verify_signature,
)

SECRET = "whsec_test"
BODY = b'{"id":"d1","customer":"c1","outcome":"sent"}'
NOW = 1_714_550_000
KEY = "5f0c2a1e-0b7d-4c1e-9a8f-2d3c4b5a6e7f"  # the Idempotency-Key: the decision id


def test_round_trip() -> None:
    header = signature_header(SecretStr(SECRET), BODY, timestamp=NOW, idempotency_key=KEY)
    assert verify_signature(SECRET, header, BODY, now=NOW + 10, idempotency_key=KEY) == NOW


def test_format_is_documented_hmac_over_t_dot_key_dot_body() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    signed = f"{NOW}.{KEY}.".encode() + BODY
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert sign(SECRET.encode(), BODY, NOW, idempotency_key=KEY) == expected


def test_defaults_to_the_current_time() -> None:
    header = signature_header(SECRET, BODY, idempotency_key=KEY)
    verify_signature(SECRET, header, BODY, idempotency_key=KEY)  # within the default tolerance


@pytest.mark.parametrize(
    "tampered",
    [BODY.replace(b"c1", b"c2"), BODY + b" ", b"", BODY[:-1]],
)
def test_tampered_body_is_rejected(tampered: bytes) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, tampered, now=NOW, idempotency_key=KEY)


def test_wrong_secret_is_rejected() -> None:
    header = signature_header("other", BODY, timestamp=NOW, idempotency_key=KEY)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, BODY, now=NOW, idempotency_key=KEY)


def test_tampered_timestamp_is_rejected() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    forged = header.replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, forged, BODY, now=NOW, idempotency_key=KEY)


def test_old_or_future_timestamps_are_rejected() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(SECRET, header, BODY, 300, now=NOW + 301, idempotency_key=KEY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(SECRET, header, BODY, 300, now=NOW - 301, idempotency_key=KEY)
    assert verify_signature(SECRET, header, BODY, 0, now=NOW + 10**6, idempotency_key=KEY) == NOW


def test_rotation_several_secrets_and_several_signatures() -> None:
    old = signature_header("old", BODY, timestamp=NOW, idempotency_key=KEY)
    new_digest = sign("new", BODY, NOW, idempotency_key=KEY)
    both = f"{old},v1={new_digest}"
    assert verify_signature("new", both, BODY, now=NOW, idempotency_key=KEY) == NOW
    assert verify_signature(["new", "old"], old, BODY, now=NOW, idempotency_key=KEY) == NOW
    with pytest.raises(SignatureError):
        verify_signature(["x", "y"], both, BODY, now=NOW, idempotency_key=KEY)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"v1={'0' * 64}",
        f"t={NOW}",
        f"t=abc,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1=é",
        f"t={'9' * 5000},v1={'0' * 64}",  # int() of it would raise ValueError
        f"t={'1' * 13},v1={'0' * 64}",
        f"t=١٢٣,v1={'0' * 64}",  # non-ASCII digits
    ],
)
def test_malformed_headers_are_rejected(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, header, BODY, now=NOW, idempotency_key=KEY)


def test_error_never_leaks_the_secret_or_digest() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    with pytest.raises(SignatureError) as info:
        verify_signature(SECRET, header, b"other", now=NOW, idempotency_key=KEY)
    assert SECRET not in str(info.value)
    assert sign(SECRET, b"other", NOW, idempotency_key=KEY) not in str(info.value)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(SignatureError, match="empty"):
        signature_header("", BODY, idempotency_key=KEY)


def test_a_huge_t_is_a_signature_error_not_a_value_error() -> None:
    header = f"t={'7' * 5000},v1={sign(SECRET, BODY, NOW, idempotency_key=KEY)}"
    with pytest.raises(SignatureError, match="bad or repeated t"):
        verify_signature(SECRET, header, BODY, now=NOW, idempotency_key=KEY)
    with pytest.raises(SignatureError):
        SignatureVerifier(SECRET, clock=lambda: NOW).verify(header, BODY, KEY)


def test_the_idempotency_key_is_covered_by_the_signature() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    for other in (KEY.replace("5f0c", "5f0d"), KEY + "x", "d2"):
        with pytest.raises(SignatureError, match="does not match"):
            verify_signature(SECRET, header, BODY, now=NOW, idempotency_key=other)
    for bad in (None, "", "a.b", "key\n", "clé"):
        with pytest.raises(SignatureError, match="Idempotency-Key"):
            verify_signature(SECRET, header, BODY, now=NOW, idempotency_key=bad)
    # part of the body cannot be passed off as part of the key: keys hold no '.'
    shifted = signature_header(SECRET, b"x." + BODY, timestamp=NOW, idempotency_key="k")
    with pytest.raises(SignatureError, match="Idempotency-Key"):
        verify_signature(SECRET, shifted, BODY, now=NOW, idempotency_key="k.x")
    with pytest.raises(SignatureError, match="Idempotency-Key"):
        signature_header(SECRET, BODY, timestamp=NOW, idempotency_key="k.x")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_verifier_rejects_a_replay_within_its_window() -> None:
    clock = Clock(NOW + 1)
    verifier = SignatureVerifier(SECRET, tolerance_s=300, clock=clock)
    header = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY)
    assert verifier.verify(header, BODY, KEY) == NOW
    clock.now = NOW + 299
    digest = header.split("v1=")[1]
    for replay in (header, f"{header},v1={'0' * 64}", header.replace(digest, digest.upper()),
                   f" v1={digest} , t={NOW} "):
        with pytest.raises(SignatureError, match="replayed"):
            verifier.verify(replay, BODY, KEY)
    # the sender's retry is signed with a later t: not a replay
    retry = signature_header(SECRET, BODY, timestamp=NOW + 1, idempotency_key=KEY)
    assert verifier.verify(retry, BODY, KEY) == NOW + 1
    # a bad request is not remembered (nor can it evict a good one)
    with pytest.raises(SignatureError, match="does not match"):
        verifier.verify(header, BODY + b" ", KEY)
    assert len(verifier) == 2


def test_the_verifier_forgets_what_left_the_window() -> None:
    clock = Clock(NOW)
    verifier = SignatureVerifier(SECRET, tolerance_s=300, clock=clock)
    for i in range(50):
        clock.now = NOW + i
        verifier.verify(signature_header(SECRET, BODY, timestamp=NOW + i, idempotency_key=KEY),
                        BODY, KEY)
    assert len(verifier) == 50
    clock.now = NOW + 349 + 1  # the first 50 s worth have left the window
    late = signature_header(SECRET, BODY, timestamp=NOW + 340, idempotency_key=KEY)
    verifier.verify(late, BODY, KEY)
    assert len(verifier) == 1
    with pytest.raises(SignatureError, match="tolerance"):  # and a replay of one is too old
        verifier.verify(signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=KEY),
                        BODY, KEY)


def test_the_verifier_memory_is_bounded_and_fails_closed() -> None:
    clock = Clock(NOW)
    verifier = SignatureVerifier(SECRET, tolerance_s=10, capacity=3, clock=clock)
    for i in range(3):
        verifier.verify(signature_header(SECRET, BODY, timestamp=NOW, idempotency_key=f"k{i}"),
                        BODY, f"k{i}")
    fourth = signature_header(SECRET, BODY, timestamp=NOW, idempotency_key="k3")
    with pytest.raises(SignatureError, match="too many"):
        verifier.verify(fourth, BODY, "k3")
    assert len(verifier) == 3
    clock.now = NOW + 11
    with pytest.raises(SignatureError, match="tolerance"):
        verifier.verify(fourth, BODY, "k3")
    fresh = signature_header(SECRET, BODY, timestamp=NOW + 11, idempotency_key="k3")
    assert verifier.verify(fresh, BODY, "k3") == NOW + 11
    assert len(verifier) == 1


def test_the_verifier_needs_a_window() -> None:
    with pytest.raises(ValueError, match="tolerance_s"):
        SignatureVerifier(SECRET, tolerance_s=0)
