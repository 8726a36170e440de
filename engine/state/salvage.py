"""Salvage what still decodes of a customer state that does not (``tact state repair``).

Works on the msgpack blob of ``CustomerState.to_wire()`` (without the store's header):
a truncated blob gives the elements before the cut; each field keeps what passes its check
in ``CustomerState.from_wire`` (a map its good entries, a list its good records); the rest
is dropped and named. What cannot be salvaged (not a state at all, a newer wire version,
another customer's state) raises :class:`~engine.errors.StateDecodeError`: repairing it
would write data this release does not understand, or that belongs to someone else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from engine.errors import StateDecodeError
from engine.models.state import (
    OPTIONAL_WIRE_FIELDS,
    WIRE_FIELDS,
    CustomerState,
    check_wire_version,
)

__all__ = ["Salvaged", "salvage_state"]

_MAPS = frozenset(("attributes", "consent", "counters", "windows", "timestamps", "campaigns",
                   "contexts", "seen", "sets", "bounced", "maps",
                   "engaged"))
_LISTS = frozenset(("history", "followups", "touches", "recent"))


@dataclass(slots=True)
class Salvaged:
    """The state rebuilt from what decoded, and what was dropped (field: why)."""

    state: CustomerState
    dropped: list[str] = field(default_factory=list)
    truncated: bool = False  # the blob ended before its last element


def salvage_state(blob: bytes, customer: str) -> Salvaged:
    """``customer``'s state rebuilt from ``blob``, keeping every field and entry that passes
    its type check; raises :class:`StateDecodeError` when nothing sound can be rebuilt."""
    items, truncated = _elements(blob)
    if not items:
        raise StateDecodeError("nothing decodes: not a msgpack list")
    check_wire_version(items)  # a newer or foreign version: positions mean something else
    found = items[1] if len(items) > 1 else customer
    if type(found) is str and found != customer:
        raise StateDecodeError("holds another customer's state")
    values: dict[str, Any] = {}
    dropped: list[str] = []
    known = WIRE_FIELDS + OPTIONAL_WIRE_FIELDS
    for (name, check), value in zip(known, items[1:], strict=False):
        if name in ("customer", "version"):
            continue  # the caller's customer; the version is the store's to set
        kept, note = _salvage_field(name, check, value)
        if note:
            dropped.append(f"{name}: {note}")
        if kept is not None:
            values[name] = kept
    missing = [name for name, _ in WIRE_FIELDS[len(items) - 1:]]
    if missing:
        dropped.append(f"missing (blob cut short): {', '.join(missing)}")
    state = CustomerState(customer, **values)
    state.extra = tuple(items[len(known) + 1:])
    return Salvaged(state, dropped, truncated)


def _elements(blob: bytes) -> tuple[list[Any], bool]:
    """The top-level list's elements that decode whole, and whether some did not."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=_no_ext)
    unpacker.feed(blob)
    items: list[Any] = []
    try:
        n = unpacker.read_array_header()
    except Exception:  # msgpack raises several types on garbage
        return [], True
    for _ in range(n):
        try:
            items.append(unpacker.unpack())
        except Exception:  # cut short, or garbage from here on
            return items, True
    return items, False


def _no_ext(code: int, data: bytes) -> Any:
    raise StateDecodeError(f"msgpack extension type {code}")


def _salvage_field(name: str, check: Callable[[Any], Any], value: Any
                   ) -> tuple[Any | None, str]:
    """(what to keep or None, a note on what was dropped or "")."""
    try:
        return check(value), ""
    except StateDecodeError as exc:
        whole = exc.reason
    if name in _MAPS and type(value) is dict:
        kept = {}
        for k, v in value.items():
            try:
                kept.update(check({k: v}))
            except StateDecodeError:
                continue
        return kept, f"{len(value) - len(kept)} of {len(value)} entries dropped ({whole})"
    if name in _LISTS and type(value) is list:
        rows = []
        for row in value:
            try:
                rows.extend(check([row]))
            except StateDecodeError:
                continue
        return rows, f"{len(value) - len(rows)} of {len(value)} records dropped ({whole})"
    return None, f"dropped ({whole})"
