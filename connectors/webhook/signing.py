"""Webhook signatures: ``X-Tact-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the lowercase hex HMAC-SHA256, keyed with the shared secret, of the bytes
``<t>.<Idempotency-Key>.<body>`` (the timestamp as decimal ASCII, a dot, the request's
``Idempotency-Key`` header, a dot, then the raw request body exactly as received). Binding
the timestamp lets a receiver reject replays older than a tolerance; binding the key stops a
captured body from being replayed under another key (past the receiver's deduplication).
The key is printable ASCII without a dot, so the framing is unambiguous. A header may carry
several ``v1`` entries (e.g. during a secret rotation); one match suffices.

Receivers verify with :func:`verify_signature` on the *raw* body, before parsing it, or with
a :class:`SignatureVerifier`, which also rejects a signature seen before within its window.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import threading
import time
from collections.abc import Callable, Iterable

from pydantic import SecretStr

from engine.errors import TactError

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "SignatureError",
    "SignatureVerifier",
    "sign",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Tact-Signature"
DEFAULT_TOLERANCE_S = 300.0
DEFAULT_REPLAY_CAPACITY = 100_000
_MAX_T_DIGITS = 12  # unix seconds until the year 33658; int() of huge strings is refused

Secret = SecretStr | str | bytes


class SignatureError(TactError):
    """A webhook signature is missing, malformed, too old (or too far ahead), or wrong.

    The message says which, and never contains the secret or the expected digest.
    """


def _key(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise SignatureError("empty webhook secret")
    return key


def _message(timestamp: int, idempotency_key: str | None, body: bytes) -> bytes:
    """The signed bytes; SignatureError for a key that could blur the framing."""
    if not idempotency_key:
        raise SignatureError("missing Idempotency-Key (it is part of the signature)")
    if not (idempotency_key.isascii() and idempotency_key.isprintable()) or \
            "." in idempotency_key:
        raise SignatureError("malformed Idempotency-Key: printable ASCII without '.' expected")
    return b"%d.%s.%s" % (timestamp, idempotency_key.encode("ascii"), body)


def sign(secret: Secret, body: bytes, timestamp: int, *, idempotency_key: str) -> str:
    """The hex ``v1`` digest of ``body`` sent with ``idempotency_key`` at ``timestamp``."""
    message = _message(int(timestamp), idempotency_key, body)
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: Secret, body: bytes, timestamp: int | None = None, *, idempotency_key: str
) -> str:
    """The ``X-Tact-Signature`` value for ``body`` and its ``Idempotency-Key``, timestamped
    now unless given."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(secret, body, t, idempotency_key=idempotency_key)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed signature header element {part.strip()[:20]!r}")
        if name == "t":
            if (not (value.isascii() and value.isdigit()) or len(value) > _MAX_T_DIGITS
                    or timestamp is not None):
                raise SignatureError("malformed signature header: bad or repeated t")
            try:
                timestamp = int(value)
            except ValueError as exc:  # cannot happen after the checks; never let it out
                raise SignatureError("malformed signature header: bad t") from exc
        elif name == "v1":
            digests.append(value.strip().lower())
        # other schemes (v0, v2, ...) are ignored so that they can be added later
    if timestamp is None:
        raise SignatureError("malformed signature header: no t=<timestamp>")
    if not digests:
        raise SignatureError("malformed signature header: no v1=<signature>")
    return timestamp, digests


def verify_signature(
    secret: Secret | Iterable[Secret],
    header: str | None,
    body: bytes,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    idempotency_key: str | None,
    now: float | None = None,
) -> int:
    """Check ``header`` against the raw ``body`` and the request's ``Idempotency-Key`` header
    (``None`` if absent: refused); return the timestamp or raise SignatureError.

    ``secret`` may be one secret or several (accept any, for rotations). The timestamp must be
    within ``tolerance_s`` seconds of ``now`` (default: the current time) in either direction;
    ``tolerance_s <= 0`` disables that check (not recommended: it allows replays).
    """
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp, digests = _parse(header)
    current = time.time() if now is None else now
    if tolerance_s > 0 and abs(current - timestamp) > tolerance_s:
        raise SignatureError(
            f"signature timestamp {timestamp} outside the {tolerance_s:g}s tolerance"
        )
    secrets = [secret] if isinstance(secret, SecretStr | str | bytes) else list(secret)
    if not secrets:
        raise SignatureError("no webhook secret to verify with")
    matched = False
    message = _message(timestamp, idempotency_key, body)
    for candidate in secrets:
        expected = hmac.new(_key(candidate), message, hashlib.sha256).hexdigest()
        for digest in digests:
            # Constant-time comparison; keep looping so timing does not reveal which matched.
            matched |= hmac.compare_digest(expected.encode(), digest.encode())
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp


class SignatureVerifier:
    """A receiver's helper: :func:`verify_signature`, plus refusing a signed request seen
    before within the tolerance window (a replay by someone who captured it).

    Memory is bounded: a request is remembered until its timestamp leaves the window (after
    which :func:`verify_signature` rejects it anyway), and at most ``capacity`` at once; when
    that many valid requests arrived within one window, further ones are refused (fail
    closed) until old ones expire. Safe to share between threads.
    """

    def __init__(
        self,
        secret: Secret | Iterable[Secret],
        tolerance_s: float = DEFAULT_TOLERANCE_S,
        *,
        capacity: int = DEFAULT_REPLAY_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance_s <= 0 or capacity < 1:
            raise ValueError("tolerance_s must be > 0 (it bounds the replay window) and "
                             "capacity >= 1")
        self._secret = secret
        self.tolerance_s = tolerance_s
        self.capacity = capacity
        self._clock = clock
        self._seen: dict[bytes, float] = {}  # request fingerprint -> when it leaves the window
        self._expiry: list[tuple[float, bytes]] = []  # a heap of the same
        self._lock = threading.Lock()

    def verify(self, header: str | None, body: bytes, idempotency_key: str | None) -> int:
        """Like :func:`verify_signature`; also SignatureError for a replayed request."""
        now = self._clock()
        timestamp = verify_signature(self._secret, header, body, self.tolerance_s,
                                     idempotency_key=idempotency_key, now=now)
        # The signed bytes identify the request whatever else the header carries (extra v1
        # entries, spacing, hex case), so they are what must not come twice.
        fingerprint = hashlib.sha256(_message(timestamp, idempotency_key, body)).digest()
        with self._lock:
            while self._expiry and self._expiry[0][0] < now:
                _, old = heapq.heappop(self._expiry)
                del self._seen[old]
            if fingerprint in self._seen:
                raise SignatureError("replayed signature: this request was already received")
            if len(self._seen) >= self.capacity:
                raise SignatureError("too many signed requests within the replay window; "
                                     "retry later")
            leaves = timestamp + self.tolerance_s
            self._seen[fingerprint] = leaves
            heapq.heappush(self._expiry, (leaves, fingerprint))
        return timestamp

    def __len__(self) -> int:
        return len(self._seen)
