"""Webhook signatures: ``X-Tact-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the lowercase hex HMAC-SHA256, keyed with the shared secret, of the bytes
``<t>.<body>`` (the timestamp as decimal ASCII, a dot, then the raw request body exactly as
received). Binding the timestamp lets a receiver reject replays older than a tolerance. A
header may carry several ``v1`` entries (e.g. during a secret rotation); one match suffices.

Receivers verify with :func:`verify_signature` on the *raw* body, before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from pydantic import SecretStr

from engine.errors import TactError

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "SignatureError",
    "sign",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Tact-Signature"
DEFAULT_TOLERANCE_S = 300.0

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


def sign(secret: Secret, body: bytes, timestamp: int) -> str:
    """The hex ``v1`` digest of ``body`` at ``timestamp``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def signature_header(secret: Secret, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Tact-Signature`` value for ``body``, timestamped now unless given."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={sign(secret, body, t)}"


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed signature header element {part.strip()[:20]!r}")
        if name == "t":
            if not (value.isascii() and value.isdigit()) or timestamp is not None:
                raise SignatureError("malformed signature header: bad or repeated t")
            timestamp = int(value)
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
    now: float | None = None,
) -> int:
    """Check ``header`` against the raw ``body``; return its timestamp or raise SignatureError.

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
    for candidate in secrets:
        expected = sign(candidate, body, timestamp)
        for digest in digests:
            # Constant-time comparison; keep looping so timing does not reveal which matched.
            matched |= hmac.compare_digest(expected.encode(), digest.encode())
    if not matched:
        raise SignatureError("signature does not match the body")
    return timestamp
