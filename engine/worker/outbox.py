"""The outbox: a batch's decisions, kept in Redis until the Kafka transaction commits them.

Why: the state write (Redis) and the Kafka transaction (decisions + consumer offsets) cannot
commit atomically. The worker writes the outbox first, then the customer states, then
commits the transaction. If it dies after the state write, the redelivered events are
duplicates for the state (``seen``) and decide nothing; their decisions come back from the
outbox instead, keyed by the source record's offset, and are sent in the new transaction.
See ``docs/worker.md`` for the whole protocol.

One Redis string per source partition (a *slot*: ``e<n>`` for partition n of the events
topic, ``t<n>`` for the ticks topic), holding a msgpack map ``{offset: {customer: [decision
JSON, ...]}}``. Entries below the slot's committed offset are dead (their transaction
committed) and are dropped on the next write.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgpack
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.config import TactSettings
from engine.errors import StateStoreError

# offset -> customer -> decisions (JSON bytes), for one slot (source topic partition)
Entries = dict[int, dict[str, list[bytes]]]


def pack_entries(entries: Entries) -> bytes:
    blob: bytes = msgpack.packb(entries, use_bin_type=True)
    return blob


def unpack_entries(blob: bytes | None) -> Entries:
    if not blob:
        return {}
    raw: Any = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not isinstance(raw, dict):
        raise StateStoreError("outbox: unreadable entry (not a map)")
    return {int(o): {str(c): list(ds) for c, ds in per.items()} for o, per in raw.items()}


class Outbox(ABC):
    """Durable storage of the per-partition outbox maps."""

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
        return {p: unpack_entries(self.data.get(p)) for p in slots}

    async def write(self, maps: Mapping[str, Entries]) -> None:
        self.writes += 1
        for p, entries in maps.items():
            if entries:
                self.data[p] = pack_entries(entries)
            else:
                self.data.pop(p, None)


class RedisOutbox(Outbox):
    def __init__(self, client: Redis, key_base: str) -> None:
        self._redis = client
        self.key_base = key_base  # e.g. "tact:outbox:tact-worker:tact.events:"

    @classmethod
    def from_settings(cls, settings: TactSettings, *, prefix: str) -> RedisOutbox:
        url = settings.redis_url.get_secret_value()
        if settings.redis_tls:
            parts = urlsplit(url)
            if parts.scheme == "redis":
                url = urlunsplit(parts._replace(scheme="rediss"))
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        try:
            client = Redis.from_url(url, password=password, socket_timeout=5.0,
                                    socket_connect_timeout=2.0, decode_responses=False)
        except ValueError:
            raise ValueError("TACT_REDIS_URL is not a valid Redis URL (not shown)") from None
        base = f"{prefix}outbox:{settings.consumer_group}:{settings.events_topic}:"
        return cls(client, base)

    def key(self, slot: str) -> str:
        return f"{self.key_base}{slot}"

    async def load(self, slots: Sequence[str]) -> dict[str, Entries]:
        if not slots:
            return {}
        try:
            blobs: list[Any] = await self._redis.mget([self.key(p) for p in slots])
        except (RedisError, OSError) as exc:
            raise StateStoreError(f"redis outbox load failed: {type(exc).__name__}: {exc}") from exc
        return {p: unpack_entries(b) for p, b in zip(slots, blobs, strict=True)}

    async def write(self, maps: Mapping[str, Entries]) -> None:
        if not maps:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for p, entries in maps.items():
                    if entries:
                        pipe.set(self.key(p), pack_entries(entries))
                    else:
                        pipe.delete(self.key(p))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StateStoreError(
                f"redis outbox write failed: {type(exc).__name__}: {exc}") from exc

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()
