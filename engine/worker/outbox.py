"""The outbox: a batch's decisions, kept in Redis until the Kafka transaction commits them.

Why: the state write (Redis) and the Kafka transaction (decisions + consumer offsets) cannot
commit atomically. The worker writes the outbox with the customer states (on Redis in the
same atomic script call; elsewhere first), then commits the transaction. If it dies after
the state write, the redelivered events are duplicates for the state (``seen``) and decide
nothing; their decisions come back from the outbox instead, keyed by the source record's
offset, and are sent in the new transaction. See ``docs/worker.md`` for the whole protocol.

One Redis string per source partition (a *slot*: ``e<n>`` for partition n of the events
topic, ``t<n>`` for the ticks topic), holding a msgpack map ``{offset: {customer: [decision
JSON, ...]}}``. Entries below the slot's committed offset are dead (their transaction
committed) and are dropped on the next write.

A slot whose value does not decode (:func:`unpack_entries` raises) is read as empty, so the
partition goes on: its decisions are lost to a crash-replay (silence, never a wrong
message), and the next write replaces the value. Before that, the raw value is copied to
``<slot key>:quarantine`` (SET NX: the first copy stays), logged, and counted in
:attr:`Outbox.corrupt_slots`.

:class:`BatchIO` is a batch's reads and writes of states and outbox together; on Redis,
:class:`JointBatchIO` makes them one read and one write per batch.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.exceptions import RedisError

from connectors.redis.client import client_from_settings, redis_errors
from connectors.redis.quarantine import copy_raw
from engine.config import TactSettings
from engine.errors import StateDecodeError, StateStoreError
from engine.models.state import CustomerState
from engine.state.base import BatchStore, StateStore

# offset -> customer -> decisions (JSON bytes), for one slot (source topic partition)
Entries = dict[int, dict[str, list[bytes]]]
_ENTRIES = "expected {offset: {customer: [decision bytes]}}"
_log = logging.getLogger(__name__)


def pack_entries(entries: Entries) -> bytes:
    blob: bytes = msgpack.packb(entries, use_bin_type=True)
    return blob


def unpack_entries(blob: bytes | None) -> Entries:
    """A slot's map; raises :class:`StateDecodeError` (only) when it does not decode."""
    if not blob:
        return {}
    try:
        raw: Any = msgpack.unpackb(blob, raw=False, strict_map_key=False, ext_hook=_no_ext)
    except Exception as exc:  # msgpack raises several types on garbage
        raise StateDecodeError(f"outbox: not msgpack: {type(exc).__name__}") from exc
    if type(raw) is not dict:
        raise StateDecodeError(f"outbox: {_ENTRIES}")
    try:
        for offset, per in raw.items():
            if type(offset) is not int or type(per) is not dict:
                raise TypeError
            for customer, decisions in per.items():
                if type(customer) is not str or type(decisions) is not list:
                    raise TypeError
                b"".join(decisions)  # TypeError unless every decision is bytes
    except TypeError:
        raise StateDecodeError(f"outbox: {_ENTRIES}") from None
    return raw


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code}")


def decode_slots(slots: Sequence[str], blobs: Sequence[bytes | None]
                 ) -> tuple[dict[str, Entries], dict[str, tuple[str, bytes]]]:
    """Each slot's map (empty where the value does not decode), and the (reason, raw value)
    of those that do not."""
    boxes: dict[str, Entries] = {}
    corrupt: dict[str, tuple[str, bytes]] = {}
    for slot, blob in zip(slots, blobs, strict=True):
        try:
            boxes[slot] = unpack_entries(blob)
        except StateDecodeError as exc:
            boxes[slot] = {}
            corrupt[slot] = (exc.reason, blob or b"")
    return boxes, corrupt


class Outbox(ABC):
    """Durable storage of the per-partition outbox maps.

    ``corrupt_slots`` counts the slot values found undecodable (read as empty) since start.
    """

    corrupt_slots: int = 0

    def _quarantined(self, corrupt: Mapping[str, tuple[str, bytes]]) -> None:
        """Log and count undecodable slots (their copies are made by the caller)."""
        self.corrupt_slots += len(corrupt)
        for slot, (reason, raw) in corrupt.items():
            _log.warning("outbox slot %s unreadable (%s): read as empty; its %d bytes are "
                         "copied to its quarantine key", slot, reason, len(raw))

    @abstractmethod
    async def load(self, slots: Sequence[str]) -> dict[str, Entries]: ...

    @abstractmethod
    async def write(self, maps: Mapping[str, Entries]) -> None:
        """Replace each slot's map (an empty map deletes it)."""

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class MemoryOutbox(Outbox):
    """For in-process runs over the memory state store (nothing survives the process)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.writes = 0

    async def load(self, slots: Sequence[str]) -> dict[str, Entries]:
        boxes, corrupt = decode_slots(slots, [self.data.get(p) for p in slots])
        if corrupt:
            for slot, (_, raw) in corrupt.items():
                self.data.setdefault(f"{slot}:quarantine", raw)
            self._quarantined(corrupt)
        return boxes

    async def write(self, maps: Mapping[str, Entries]) -> None:
        self.writes += 1
        for p, entries in maps.items():
            if entries:
                self.data[p] = pack_entries(entries)
            else:
                self.data.pop(p, None)


class RedisOutbox(Outbox):
    """The outbox maps in Redis, one string per slot.

    ``observe``, when set, is called as ``observe(operation, seconds)`` once per round trip
    this class makes itself: ``"outbox_load"`` (one MGET), ``"outbox_write"`` (one
    pipeline of SET/DEL) and ``"ping"``. In the worker, the outbox usually rides on the
    state store's round trips instead (:class:`BatchIO`), which observes them as ``"load"``
    and ``"save"``.
    """

    def __init__(self, client: Redis, key_base: str) -> None:
        self._redis = client
        self.key_base = key_base  # e.g. "tact:outbox:tact-worker:tact.events:"
        self.observe: Callable[[str, float], None] | None = None

    @classmethod
    def from_settings(cls, settings: TactSettings, *, prefix: str) -> RedisOutbox:
        client = client_from_settings(settings)
        base = f"{prefix}outbox:{settings.consumer_group}:{settings.events_topic}:"
        return cls(client, base)

    @property
    def client(self) -> Redis:
        return self._redis

    def key(self, slot: str) -> str:
        return f"{self.key_base}{slot}"

    def quarantine_key(self, slot: str) -> str:
        return f"{self.key_base}{slot}:quarantine"

    async def quarantine(self, corrupt: Mapping[str, tuple[str, bytes]]) -> None:
        """Copy undecodable slot values aside (one round trip), log and count them."""
        with self._trip("outbox_quarantine"):
            await copy_raw(self._redis, {self.quarantine_key(s): raw
                                         for s, (_, raw) in corrupt.items()})
        self._quarantined(corrupt)

    def staged(self, maps: Mapping[str, Entries]) -> list[tuple[str, bytes | None]]:
        """The (key, value) writes of :meth:`write`; None deletes (an empty map)."""
        return [(self.key(p), pack_entries(e) if e else None) for p, e in maps.items()]

    async def load(self, slots: Sequence[str]) -> dict[str, Entries]:
        if not slots:
            return {}
        with self._trip("outbox_load"):
            blobs: list[Any] = await self._redis.mget([self.key(p) for p in slots])
        boxes, corrupt = decode_slots(slots, blobs)
        if corrupt:
            await self.quarantine(corrupt)
        return boxes

    async def write(self, maps: Mapping[str, Entries]) -> None:
        if not maps:
            return
        with self._trip("outbox_write"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, value in self.staged(maps):
                    if value is None:
                        pipe.delete(key)
                    else:
                        pipe.set(key, value)
                await pipe.execute()

    async def ping(self) -> bool:
        try:
            with self._trip("ping"):
                return bool(await self._redis.ping())
        except StateStoreError:
            return False

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    @contextmanager
    def _trip(self, operation: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            with redis_errors(operation.replace("_", " ")):
                yield
        finally:
            if self.observe is not None:
                self.observe(operation, time.perf_counter() - t0)


# -- a batch's reads and writes ------------------------------------------------------------
Read = tuple[dict[str, CustomerState], dict[str, Entries], list[list[str]]]


class BatchIO:
    """A batch's reads and writes of states and outbox, in the order of ``docs/worker.md``.

    This one makes separate calls (any :class:`StateStore` and :class:`Outbox`): the outbox
    load of newly owned slots, the state load, a due query per tick; then the outbox write
    and one checked save per source partition. :func:`batch_io` picks
    :class:`JointBatchIO` when the store can carry the outbox in its own round trips.
    """

    def __init__(self, store: StateStore, outbox: Outbox) -> None:
        self.store = store
        self.outbox = outbox
        #: customers met since the last :meth:`read` (the batch so far) whose stored state
        #: does not decode -> reason ("state_corrupt: ..."): absent from the states returned,
        #: never to be saved (``BatchRead.quarantined``)
        self.quarantined: dict[str, str] = {}
        self._batch_store = store if isinstance(store, BatchStore) else None
        self._save_by_partition = _has_param(store.save, "partition")
        self._due_by_partition = _has_param(store.due_customers, "partition")

    async def read(self, customers: list[str], slots: Sequence[str],
                   ticks: Sequence[tuple[int, float]], limit: int) -> Read:
        """States of ``customers``, outbox maps of ``slots``, and per (partition, clock) of
        ``ticks`` the customers with a follow-up due (at most ``limit``)."""
        self.quarantined = {}
        boxes = await self.outbox.load(slots) if slots else {}
        states = await self.load(customers)
        due = [await self._due(now, p, limit) for p, now in ticks]
        return states, boxes, due

    async def load(self, customers: list[str]) -> dict[str, CustomerState]:
        """The states of ``customers`` that decode; the others go to :attr:`quarantined`."""
        if self._batch_store is None:
            return await self.store.load(customers)
        got = await self._batch_store.read_batch(customers)
        self.quarantined.update(got.quarantined)
        return got.states

    async def write(self, maps: Mapping[str, Entries],
                    by_partition: Mapping[int, dict[str, CustomerState]]) -> None:
        """The outbox first, then the states (raises StateConflictError after the others)."""
        if maps:
            await self.outbox.write(maps)
        for p, states in sorted(by_partition.items()):
            if self._save_by_partition:
                await self.store.save(states, partition=p)  # type: ignore[call-arg]
            else:
                await self.store.save(states)

    async def _due(self, now: float, partition: int, limit: int) -> list[str]:
        if self._due_by_partition:
            due: list[str] = await self.store.due_customers(  # type: ignore[call-arg]
                now, limit, partition=partition)
            return due
        return await self.store.due_customers(now, limit)


class JointBatchIO(BatchIO):
    """Two round trips per batch: one read (states, the outbox of newly owned slots, due
    follow-ups) and one atomic write (the outbox, then every partition's checked save), on
    a :class:`~engine.state.base.BatchStore` and a :class:`RedisOutbox` of the same server.

    A tick that fires follow-ups of customers not in the batch costs one more read.
    """

    def __init__(self, store: StateStore, joint: BatchStore, outbox: RedisOutbox) -> None:
        super().__init__(store, outbox)
        self.joint = joint
        self.redis_outbox = outbox

    async def read(self, customers: list[str], slots: Sequence[str],
                   ticks: Sequence[tuple[int, float]], limit: int) -> Read:
        got = await self.joint.read_batch(
            customers, keys=[self.redis_outbox.key(s) for s in slots],
            due=[(p, now, limit) for p, now in ticks])
        self.quarantined = dict(got.quarantined)
        boxes, corrupt = decode_slots(slots, got.values)
        if corrupt:
            await self.redis_outbox.quarantine(corrupt)
        return got.states, boxes, got.due

    async def write(self, maps: Mapping[str, Entries],
                    by_partition: Mapping[int, dict[str, CustomerState]]) -> None:
        await self.joint.save_batch(by_partition, self.redis_outbox.staged(maps))


def batch_io(store: StateStore, outbox: Outbox) -> BatchIO:
    """:class:`JointBatchIO` when the store and the outbox can share round trips."""
    if (isinstance(outbox, RedisOutbox) and isinstance(store, BatchStore)
            and store.shares_server(outbox.client)):
        return JointBatchIO(store, store, outbox)
    return BatchIO(store, outbox)


def _has_param(fn: object, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
