"""The Redis state store: one read and one write per batch, partitions explicit.

Key layout: :mod:`engine.state.redis.keys` (everything of one Kafka partition in one hash
slot). Stored values: :mod:`engine.state.wire`, the same bytes as the changelog's.

Round trips: :meth:`RedisStateStore.read` is one pipeline (an MGET of states per partition,
a ZRANGEBYSCORE per due query, a GET per mark); :meth:`RedisStateStore.write` one pipeline
of one script call per partition (:data:`~engine.state.redis.scripts.WRITE`). On a single
server each is one round trip; on a cluster, redis-py sends one per node.

The store does not decide what is true: Kafka's changelog does. A partition's mark is the
changelog position its states reflect; a write carries the new mark and is refused when the
stored mark is missing (the data was lost: rebuild it) or ahead (a newer writer). The first
write of a script per connection sends EVAL (which caches the script on the server); a
NOSCRIPT answer (server restarted, SCRIPT FLUSH) resends that call with EVAL.

A stored value that does not decode quarantines its customer: the raw value is copied to
the quarantine key (SET NX: the first copy stays), the customer is reported in
``BatchRead.quarantined`` and never written over until an operator acts
(:mod:`engine.state.redis.quarantine`).

TTL: every write resets a state's TTL (``state_ttl_seconds``, stretched so that a state
outlives its pending follow-up); a rebuild gives each state what is left of it since the
changelog record was written.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import msgpack
from redis.exceptions import NoScriptError

from engine.config import TactSettings
from engine.errors import StateStoreError
from engine.models.state import CustomerState
from engine.state.base import BatchRead, PartitionWrite, StateStore
from engine.state.redis import scripts
from engine.state.redis.client import AnyRedis, client_from_settings, redis_errors, text
from engine.state.redis.keys import Keys, partition_of
from engine.state.redis.quarantine import copy_raw, decode_values

__all__ = ["DEFAULT_PREFIX", "RedisStateStore"]

DEFAULT_PREFIX = "tact:"
_log = logging.getLogger("tact.state")
_NOT_DUE = ""
DELETE_CHUNK = 1000  # keys per DEL while a partition is rebuilt

#: ``observe(operation, seconds)``: called once per Redis round trip.
Observer = Callable[[str, float], None]


class RedisStateStore(StateStore):
    """Customer state in Redis (or a Redis Cluster), partitioned like the events topic.

    ``partitions`` is the events topic's partition count, used only to find a customer's
    partition when none is given (``tact state``); the worker always says which.

    ``round_trips`` counts every request sent (one per pipeline execute or single command).
    ``observe``, when set, is called as ``observe(operation, seconds)`` once per round trip:
    ``"load"`` (:meth:`read`), ``"save"`` (:meth:`write`), ``"restore"``, ``"pending"``,
    ``"quarantine"`` (only when some states do not decode) and ``"ping"``.
    """

    def __init__(self, client: AnyRedis, *, prefix: str = DEFAULT_PREFIX, partitions: int = 1,
                 state_ttl_seconds: int = 90 * 86400, owns_client: bool = True) -> None:
        if state_ttl_seconds < 1:
            raise ValueError("the state TTL must be at least one second")
        self._redis = client
        self.keys = Keys(prefix)
        self.prefix = prefix
        self.partitions = max(1, partitions)
        self.state_ttl_seconds = state_ttl_seconds
        self._owns_client = owns_client
        self._script_cached = False
        self.round_trips = 0
        self.observe: Observer | None = None

    @classmethod
    def from_settings(cls, settings: TactSettings, *, prefix: str = DEFAULT_PREFIX,
                      socket_timeout: float = 5.0, connect_timeout: float = 2.0,
                      retries: int = 2) -> Self:
        """A store on ``settings.redis_url`` (password, TLS and cluster mode applied).

        redis-py resends a request ``retries`` times on a connection error or timeout; after
        that the error surfaces as :class:`~engine.errors.StateStoreError`. Resending a
        write is safe (the same mark and values). The URL and password are never logged.
        """
        client = client_from_settings(settings, socket_timeout=socket_timeout,
                                      connect_timeout=connect_timeout, retries=retries)
        return cls(client, prefix=prefix, partitions=settings.events_partitions,
                   state_ttl_seconds=settings.state_ttl_seconds)

    @property
    def client(self) -> AnyRedis:
        return self._redis

    def __repr__(self) -> str:
        return f"RedisStateStore(prefix={self.prefix!r})"

    # -- keys -------------------------------------------------------------------------------
    def partition_of(self, customer: str) -> int:
        return partition_of(customer, self.partitions)

    def state_key(self, customer: str, partition: int | None = None) -> str:
        p = self.partition_of(customer) if partition is None else partition
        return self.keys.state(customer, p)

    def quarantine_key(self, customer: str, partition: int | None = None) -> str:
        p = self.partition_of(customer) if partition is None else partition
        return self.keys.quarantine(customer, p)

    # -- StateStore -----------------------------------------------------------------------
    async def read(self, customers: Mapping[str, int], *,
                   due: Sequence[tuple[int, float, int]] = (),
                   marks: Collection[int] = ()) -> BatchRead:
        by_part: dict[int, list[str]] = {}
        for c, p in customers.items():
            group = by_part.get(p)
            if group is None:
                group = by_part[p] = []
            group.append(c)
        parts = list(marks)
        if not by_part and not due and not parts:
            return BatchRead({})
        keys = self.keys
        with self._trip("load"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for p, ids in by_part.items():
                    # by name: redis-py's cluster pipeline refuses pipe.mget (keys may span
                    # slots), yet these share one (the partition's hash tag)
                    pipe.execute_command("MGET", *[keys.state(c, p) for c in ids])
                for p, now, limit in due:
                    pipe.zrangebyscore(keys.due(p), "-inf", repr(float(now)), start=0,
                                       num=max(limit, 1))
                for p in parts:
                    pipe.get(keys.mark(p))
                replies: list[Any] = await pipe.execute()
        ids_all: list[str] = []
        values: list[bytes | None] = []
        for (_p, ids), got in zip(by_part.items(), replies, strict=False):
            ids_all.extend(ids)
            values.extend(got)
        rest = replies[len(by_part):]
        found = [[text(m) for m in ms][: max(limit, 0)]
                 for ms, (_, _, limit) in zip(rest, due, strict=False)]
        mark_values = rest[len(due):]
        read_marks = {p: None if v is None else int(v)
                      for p, v in zip(parts, mark_values, strict=True)}
        states, corrupt = decode_values(ids_all, values)
        quarantined = await self._quarantine(corrupt, customers) if corrupt else {}
        return BatchRead(states, found, quarantined, read_marks)

    async def write(self, writes: Mapping[int, PartitionWrite]) -> set[int]:
        calls: list[tuple[int, list[str], list[Any]]] = []
        wall = time.time()
        keys = self.keys
        for p, w in writes.items():
            if not w.states and w.mark is None:
                continue
            skeys: list[str] = []
            rows: list[list[Any]] = []
            for c, (st, value) in w.states.items():
                next_due = st.next_due()
                skeys.append(keys.state(c, p))
                rows.append([value, self._ttl(next_due, wall), c,
                             _NOT_DUE if next_due is None else repr(float(next_due))])
            mark = "" if w.mark is None else str(w.mark)
            calls.append((p, [keys.mark(p), keys.due(p), *skeys],
                          [mark, "", msgpack.packb(rows, use_bin_type=False)]))
        if not calls:
            return set()
        results = await self._run_scripts(calls, "save")
        return {p for (p, _k, _a), res in zip(calls, results, strict=True) if int(res) < 0}

    async def restore(self, partition: int, records: Iterable[tuple[str, bytes | None, float]],
                      mark: int, *, fresh: bool) -> int:
        """Apply changelog records of ``partition`` and set its mark (see the base class).

        ``fresh`` deletes the mark first, so that a restore cut short is seen as lost and
        done again, then the partition's state keys and index (quarantine copies stay).
        """
        keys, wall = self.keys, time.time()
        if fresh:
            await self._wipe(partition)
        skeys: list[str] = []
        rows: list[list[Any]] = []
        for customer, value, written_at in records:
            skeys.append(keys.state(customer, partition))
            due = None if value is None else _due_of(value)
            # what is left of the TTL the write at ``written_at`` gave it (never more than a
            # write now would give: a clock ahead of ours)
            left = 0 if value is None else min(
                int(written_at + self._ttl(due, written_at) - wall), self._ttl(due, wall))
            if value is None or left < 1:
                rows.append(["", 1, customer, _NOT_DUE])
                continue
            rows.append([value, left, customer, _NOT_DUE if due is None else repr(float(due))])
        call = (partition, [keys.mark(partition), keys.due(partition), *skeys],
                [str(mark), "force" if fresh else "", msgpack.packb(rows, use_bin_type=False)])
        (res,) = await self._run_scripts([call], "restore")
        if int(res) < 0:  # the states read before are not what the changelog says: no batch
            why = "holds no mark" if int(res) == scripts.LOST else f"is past {mark}"
            raise StateStoreError(f"partition {partition}: restore refused, the store's mark "
                                  f"{why}; read it again")
        return int(res)

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        """Customers with a follow-up pending in these partitions (ZCARD each, one pipeline)."""
        parts = list(dict.fromkeys(partitions))
        if not parts:
            return 0
        with self._trip("pending"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for p in parts:
                    pipe.zcard(self.keys.due(p))
                counts: list[int] = await pipe.execute()
        return sum(int(n) for n in counts)

    async def ping(self) -> bool:
        try:
            with self._trip("ping"):
                return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        if self._owns_client:
            with redis_errors("close"):
                await self._redis.aclose()

    async def partition_keys(self, partition: int) -> int:
        """How many states the store holds for ``partition`` (SCAN; for tools and tests)."""
        n = 0
        with redis_errors("scan"):
            async for _ in self._redis.scan_iter(match=self.keys.states_pattern(partition),
                                                 count=1000):
                n += 1
        return n

    # -- internals --------------------------------------------------------------------------
    async def _wipe(self, partition: int) -> None:
        keys = self.keys
        with self._trip("restore"):
            await self._redis.delete(keys.mark(partition), keys.due(partition))
        batch: list[Any] = []
        with redis_errors("restore"):
            async for key in self._redis.scan_iter(match=keys.states_pattern(partition),
                                                   count=DELETE_CHUNK):
                batch.append(key)
                if len(batch) >= DELETE_CHUNK:
                    await self._redis.delete(*batch)
                    batch = []
            if batch:
                await self._redis.delete(*batch)

    async def _run_scripts(self, calls: Sequence[tuple[int, list[str], list[Any]]],
                           operation: str) -> list[Any]:
        """One pipeline of script calls; a NOSCRIPT answer resends that call with EVAL."""
        use_sha = self._script_cached
        with self._trip(operation):
            async with self._redis.pipeline(transaction=False) as pipe:
                for _p, ks, argv in calls:
                    # by name: the cluster pipeline refuses pipe.evalsha (routes it all the same)
                    if use_sha:
                        pipe.execute_command("EVALSHA", scripts.WRITE_SHA, len(ks), *ks, *argv)
                    else:
                        pipe.execute_command("EVAL", scripts.WRITE, len(ks), *ks, *argv)
                results: list[Any] = await pipe.execute(raise_on_error=False)
        self._script_cached = True
        redo = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        for i in redo:  # the server lost its script cache: that call did not run
            _p, ks, argv = calls[i]
            with self._trip(operation):
                results[i] = await self._redis.eval(scripts.WRITE, len(ks), *ks, *argv)
        for r in results:
            if isinstance(r, Exception):
                with redis_errors(operation):
                    raise r
        return results

    @contextmanager
    def _trip(self, operation: str) -> Iterator[None]:
        """One round trip: counted, timed for ``observe``, errors as StateStoreError."""
        self.round_trips += 1
        t0 = time.perf_counter()
        try:
            with redis_errors(operation):
                yield
        finally:
            if self.observe is not None:
                self.observe(operation, time.perf_counter() - t0)

    async def _quarantine(self, corrupt: Mapping[str, tuple[str, bytes]],
                          customers: Mapping[str, int]) -> dict[str, str]:
        """Copy each raw value to its quarantine key (the first copy stays); the reasons."""
        with self._trip("quarantine"):
            await copy_raw(self._redis, {self.keys.quarantine(c, customers[c]): raw
                                         for c, (_, raw) in corrupt.items()})
        for c, (reason, raw) in corrupt.items():
            _log.warning("customer %s: stored state quarantined (%s); its %d bytes are kept "
                         "at %s", c, reason, len(raw), self.keys.quarantine(c, customers[c]))
        return {c: f"state_corrupt: {reason}" for c, (reason, _) in corrupt.items()}

    def ttl_for(self, state: CustomerState) -> int:
        return self._ttl(state.next_due(), time.time())

    def _ttl(self, due: float | None, wall: float) -> int:
        """``state_ttl_seconds``, stretched to outlive a pending follow-up (event time; wall
        time is close enough for a lifetime)."""
        ttl = self.state_ttl_seconds
        if due is not None and math.isfinite(due) and due > wall:
            ttl = max(ttl, math.ceil(due - wall) + self.state_ttl_seconds)
        return ttl


def _due_of(value: bytes) -> float | None:
    """The next follow-up due time of a stored value (None: none, or it does not decode)."""
    from engine.errors import StateDecodeError
    from engine.state.wire import unpack_stored

    try:
        return unpack_stored(value).next_due()
    except StateDecodeError:
        return None
