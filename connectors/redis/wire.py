"""What the Redis state store keeps per customer: a version header, then a msgpack blob.

``{version as 16 lowercase hex digits}{msgpack of CustomerState.to_wire()}``: the save
script reads the 16-byte header (GETRANGE) to check the version without the blob.
"""

from __future__ import annotations

import re

import msgpack

from connectors.redis.scripts import VERSION_DIGITS
from engine.models.state import CustomerState

__all__ = ["decode_state", "encode_state", "pack_stored", "unpack_stored"]

_HEADER = re.compile(rb"[0-9a-f]{%d}" % VERSION_DIGITS)
_MAX_VERSION = 16**VERSION_DIGITS


def encode_state(state: CustomerState, *, version: int | None = None) -> bytes:
    """The msgpack blob of ``state``; ``version`` overrides the one written in it."""
    wire = state.to_wire()
    if version is not None:
        wire[2] = version
    blob: bytes = msgpack.packb(wire, use_bin_type=True)
    return blob


def decode_state(blob: bytes) -> CustomerState:
    """The inverse of :func:`encode_state` (raises ``ValueError`` on an unreadable blob)."""
    try:
        wire = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    except ValueError:
        raise
    except Exception as exc:  # msgpack raises a few non-ValueError types on garbage
        raise ValueError(f"not msgpack: {exc}") from exc
    if not isinstance(wire, list):
        raise ValueError(f"expected a msgpack list, got {type(wire).__name__}")
    try:
        return CustomerState.from_wire(wire)
    except (TypeError, IndexError) as exc:
        raise ValueError(f"malformed customer state: {exc}") from exc


def pack_stored(state: CustomerState, version: int) -> bytes:
    """The value stored for a customer: ``version`` as 16 hex digits, then the blob."""
    if not 0 <= version < _MAX_VERSION:
        raise ValueError(f"version out of range: {version}")
    return b"%0*x" % (VERSION_DIGITS, version) + encode_state(state, version=version)


def unpack_stored(value: bytes) -> CustomerState:
    """The inverse of :func:`pack_stored`; the header's version wins (raises ``ValueError``)."""
    head = value[:VERSION_DIGITS]
    if _HEADER.fullmatch(head) is None:
        raise ValueError(f"bad version header {head!r}")
    state = decode_state(value[VERSION_DIGITS:])
    state.version = int(head, 16)
    return state
