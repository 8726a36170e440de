"""A customer's stored value, the same bytes in the changelog topic and in every store.

``{version as 16 lowercase hex digits}{msgpack of CustomerState.to_wire()}``. The version
counts the customer's writes; the header lets tools read it without decoding the blob.
"""

from __future__ import annotations

import re
from typing import Any

import msgpack

from engine.errors import StateDecodeError
from engine.models.packing import pack_wire
from engine.models.state import CustomerState

__all__ = ["VERSION_DIGITS", "decode_state", "encode_state", "pack_stored", "stored_version",
           "unpack_stored"]

#: The stored value's header: the version as this many lowercase hex digits.
VERSION_DIGITS = 16

_HEADER = re.compile(rb"[0-9a-f]{%d}" % VERSION_DIGITS)
_MAX_VERSION = 16**VERSION_DIGITS


def _no_ext(code: int, data: bytes) -> Any:
    """msgpack extension types: Tact never writes them, so a value holding one is foreign."""
    raise StateDecodeError(f"msgpack extension type {code}")


def encode_state(state: CustomerState, *, version: int | None = None) -> bytes:
    """The msgpack blob of ``state``; ``version`` overrides the one written in it.

    Raises ``TypeError`` for a value msgpack has no type for, and ``OverflowError`` for an
    integer outside 64 bits (the batch is then split around the event that made it).
    """
    wire = state.to_wire()
    if version is not None:
        wire[2] = version
    return pack_wire(wire)


def decode_state(blob: bytes) -> CustomerState:
    """The inverse of :func:`encode_state`.

    Raises :class:`~engine.errors.StateDecodeError` (a ``ValueError``) and nothing else on
    an unreadable blob: not msgpack, truncated, trailing bytes, a foreign wire version or a
    field of the wrong type (``CustomerState.from_wire``).
    """
    try:
        wire = msgpack.unpackb(blob, raw=False, strict_map_key=False, ext_hook=_no_ext)
    except StateDecodeError:
        raise
    except Exception as exc:  # msgpack raises several types on garbage (ValueError, TypeError...)
        raise StateDecodeError(f"not msgpack: {type(exc).__name__}") from exc
    return CustomerState.from_wire(wire)


def pack_stored(state: CustomerState, version: int) -> bytes:
    """The value stored for a customer: ``version`` as 16 hex digits, then the blob."""
    if not 0 <= version < _MAX_VERSION:
        raise ValueError(f"version out of range: {version}")
    return b"%0*x" % (VERSION_DIGITS, version) + encode_state(state, version=version)


def unpack_stored(value: bytes) -> CustomerState:
    """The inverse of :func:`pack_stored`; the header's version wins.

    Raises :class:`~engine.errors.StateDecodeError` as :func:`decode_state` does.
    """
    version = stored_version(value)
    state = decode_state(value[VERSION_DIGITS:])
    state.version = version
    return state


def stored_version(value: bytes) -> int:
    """The version in a stored value's header (raises :class:`StateDecodeError`)."""
    head = value[:VERSION_DIGITS]
    if _HEADER.fullmatch(head) is None:
        raise StateDecodeError("bad version header")
    return int(head, 16)
