"""Customer states that do not decode: the store's quarantine, and what an operator does.

The worker side (:meth:`RedisStateStore.read <engine.state.redis.store.RedisStateStore.read>`):
:func:`decode_values` splits what decodes from what does not, and :func:`copy_raw` copies
each undecodable value to its quarantine key (:mod:`engine.state.redis.keys`; SET NX: the
first copy stays, so a retried batch copies nothing twice). The state key keeps
its value: the worker never saves a customer it could not load.

The operator side (``tact state show|repair|reset``): :func:`inspect` reports a
customer's stored state; :func:`repair` rewrites it from what still decodes
(:mod:`engine.state.salvage`) with the version bumped; :func:`reset` deletes it. Both check
the state key did not change meanwhile (WATCH), copy the old value to the quarantine key
first unless a copy is there already, and leave the customer processable: the next batch
reads a state that decodes (or none, a fresh customer). Neither touches the follow-up
index: a stale entry is cleared by the worker's next save of that customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from redis.exceptions import WatchError

from engine.errors import StateDecodeError, StateStoreError
from engine.models.state import CustomerState
from engine.state.redis.client import AnyRedis, redis_errors
from engine.state.salvage import salvage_state
from engine.state.wire import VERSION_DIGITS, pack_stored, stored_version, unpack_stored

if TYPE_CHECKING:
    from engine.state.redis.store import RedisStateStore

__all__ = ["Inspection", "Repair", "Reset", "copy_raw", "decode_values", "inspect", "repair",
           "reset"]

Status = Literal["ok", "absent", "corrupt"]


# -- the worker side ------------------------------------------------------------------------
def decode_values(ids: Sequence[str], values: Sequence[bytes | None]
                  ) -> tuple[dict[str, CustomerState], dict[str, tuple[str, bytes]]]:
    """The states that decode (a fresh one where nothing is stored), and the (reason, raw
    value) of those that do not, or hold another customer's state."""
    out: dict[str, CustomerState] = {}
    corrupt: dict[str, tuple[str, bytes]] = {}
    for c, value in zip(ids, values, strict=True):
        if value is None:
            out[c] = CustomerState(c)
            continue
        try:
            state = unpack_stored(value)
        except StateDecodeError as exc:
            corrupt[c] = (exc.reason, value)
            continue
        if state.customer != c:
            corrupt[c] = ("holds another customer's state", value)
            continue
        out[c] = state
    return out, corrupt


async def copy_raw(client: AnyRedis, copies: Mapping[str, bytes]) -> None:
    """SET NX each (quarantine key, raw value), in one pipeline (redis errors raise)."""
    async with client.pipeline(transaction=False) as pipe:
        for key, raw in copies.items():
            pipe.set(key, raw, nx=True)
        await pipe.execute()


# -- the operator side ----------------------------------------------------------------------
@dataclass(slots=True)
class Inspection:
    """A customer's stored state as the worker would read it."""

    customer: str
    status: Status
    reason: str = ""  # why it does not decode
    state: CustomerState | None = None  # when it decodes
    stored_bytes: int = 0
    quarantine_bytes: int | None = None  # size of the quarantine copy, if there is one


@dataclass(slots=True)
class Repair:
    """What :func:`repair` did (or, dry run, would do)."""

    customer: str
    status: Status  # of the state before: only "corrupt" is repaired
    reason: str = ""
    written: bool = False
    version: int | None = None  # of the state written
    dropped: list[str] = field(default_factory=list)
    state: CustomerState | None = None


@dataclass(slots=True)
class Reset:
    """What :func:`reset` did."""

    customer: str
    deleted_bytes: int | None  # the state deleted (None: there was none)
    quarantine_kept: bool  # a copy stays at the quarantine key
    backup: Path | None = None


async def inspect(store: RedisStateStore, customer: str, partition: int | None = None
                  ) -> Inspection:
    key, qkey = store.state_key(customer, partition), store.quarantine_key(customer, partition)
    with redis_errors("state show"):
        stored: list[bytes | None] = await store.client.mget([key, qkey])  # type: ignore[assignment]
        value, copy = stored
    quarantine_bytes = None if copy is None else len(copy)
    if value is None:
        return Inspection(customer, "absent", quarantine_bytes=quarantine_bytes)
    states, corrupt = decode_values([customer], [value])
    if corrupt:
        return Inspection(customer, "corrupt", corrupt[customer][0], None, len(value),
                          quarantine_bytes)
    return Inspection(customer, "ok", "", states[customer], len(value), quarantine_bytes)


async def repair(store: RedisStateStore, customer: str, *, dry_run: bool = False,
                 partition: int | None = None) -> Repair:
    """Rewrite ``customer``'s undecodable state from what still decodes, version bumped.

    A state that decodes (or none) is left alone. Raises :class:`StateDecodeError` when
    nothing sound can be salvaged (``reset`` then), :class:`StateStoreError` when Redis
    fails or the state changed meanwhile.
    """
    key, qkey = store.state_key(customer, partition), store.quarantine_key(customer, partition)
    with redis_errors("state repair"):
        async with store.client.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            value: bytes | None = await pipe.get(key)  # type: ignore[assignment]
            if value is None:
                return Repair(customer, "absent")
            _, corrupt = decode_values([customer], [value])
            if not corrupt:
                return Repair(customer, "ok")
            reason = corrupt[customer][0]
            salvaged = salvage_state(value[VERSION_DIGITS:], customer)
            version = _stored_version(value) + 1
            salvaged.state.version = version
            done = Repair(customer, "corrupt", reason, not dry_run, version, salvaged.dropped,
                          salvaged.state)
            if dry_run:
                return done
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(qkey, value, nx=True)
            pipe.set(key, pack_stored(salvaged.state, version), ex=store.ttl_for(salvaged.state))
            await _execute(pipe, customer)
    return done


async def reset(store: RedisStateStore, customer: str, *, purge: bool = False,
                partition: int | None = None,
                backup: Path | None = None) -> Reset:
    """Delete ``customer``'s state: the next event starts a fresh one.

    The old value goes to the quarantine key first (unless a copy is there), and to
    ``backup`` (a file, written before anything is deleted; the quarantine copy when no
    state is left). ``purge`` deletes the quarantine copy as well.
    """
    key, qkey = store.state_key(customer, partition), store.quarantine_key(customer, partition)
    with redis_errors("state reset"):
        async with store.client.pipeline(transaction=True) as pipe:
            await pipe.watch(key, qkey)
            # by name: the cluster pipeline refuses pipe.mget; both keys share one slot
            # (after WATCH the pipeline runs it at once: a reply, not the pipeline)
            stored = cast("list[bytes | None]", await pipe.execute_command("MGET", key, qkey))
            value, copy = stored
            saved = value if value is not None else copy
            if backup is not None and saved is not None:
                backup.write_bytes(saved)
            pipe.multi()  # type: ignore[no-untyped-call]
            if purge:
                pipe.delete(key, qkey)
            else:
                if value is not None:
                    pipe.set(qkey, value, nx=True)
                pipe.delete(key)
            await _execute(pipe, customer)
    kept = not purge and (value is not None or copy is not None)
    return Reset(customer, None if value is None else len(value), kept,
                 backup if saved is not None else None)


def _stored_version(value: bytes) -> int:
    """The header's version; 0 when the header itself is unreadable."""
    try:
        return stored_version(value)
    except StateDecodeError:
        return 0


async def _execute(pipe: Any, customer: str) -> None:
    try:
        await pipe.execute()
    except WatchError:
        raise StateStoreError(
            f"customer {customer}: the state changed meanwhile; run again") from None
