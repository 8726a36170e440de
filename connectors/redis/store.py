"""The Redis state store: one read (MGET) and one write (one script call) per batch.

Key layout (``prefix`` defaults to ``tact:``; tests use ``tact-test-<uuid>:``)::

    {prefix}{<customer>}:state     string: version (16 hex digits) + msgpack state   TTL
    {prefix}{<customer>}:quarantine  string: first undecodable value of that state
    {prefix}followups:<partition>  sorted set: customer -> next follow-up due time
    {prefix}seen:<event id>        dedupe marker ("1")                               TTL

One key per customer, a plain string: the version is a fixed-width header in front of the
blob (and also inside it, ``CustomerState.version``), so the save script reads 16 bytes
(GETRANGE) to check it. A string costs less memory than a hash holding the same blob (a
state blob is longer than a listpack entry may be, so a hash would be a real hashtable).
Wire form: :mod:`connectors.redis.wire`; the script: :mod:`connectors.redis.scripts`.

Round trips: ``load`` is one MGET (one reply to parse, not one per customer);
:meth:`RedisStateStore.read_batch` adds other keys (the worker's outbox) and due follow-up
queries to that read as one pipeline. ``save`` is one EVALSHA of
:data:`~connectors.redis.scripts.SAVE_BATCH` carrying every customer, and
:meth:`RedisStateStore.save_batch` the same for several partitions plus other keys' writes
(the outbox), all applied atomically. The first save of a store sends EVAL (which also caches
the script on the server); a NOSCRIPT answer (server restarted or SCRIPT FLUSH) resends the
call with EVAL, one extra round trip that time only (the script had not run).

Concurrency is optimistic and per customer: in a batch, the customers whose stored version
still equals the loaded one are written, the others are not and the save raises
:class:`RedisStateConflictError` naming them. The caller reloads and retries those only
(the written ones already carry their new ``version``). Nothing is lost when two workers
overlap during a rebalance: the loser's write is refused, never applied over the winner's.
A state that expired (TTL) since it was loaded also counts as a conflict.

Quarantine: a state that does not decode (truncated, a newer wire version, a wrong type)
is returned apart by :meth:`RedisStateStore.read_batch`, its raw value copied aside and
left in place until an operator acts: :mod:`connectors.redis.quarantine`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

import msgpack
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from connectors.redis import scripts
from connectors.redis.client import client_from_settings, redis_errors, server_of, text
from connectors.redis.markers import SeenMarkers
from connectors.redis.quarantine import copy_raw, decode_values
from connectors.redis.wire import decode_state, encode_state, pack_stored, unpack_stored
from engine.config import TactSettings
from engine.errors import StateConflictError, StateCorruptError, StateStoreError
from engine.models.state import CustomerState
from engine.state.base import BatchRead, StateStore

__all__ = [
    "DEFAULT_PREFIX",
    "RedisStateConflictError",
    "RedisStateStore",
    "decode_state",
    "encode_state",
    "pack_stored",
    "unpack_stored",
]

DEFAULT_PREFIX = "tact:"
_NOT_DUE = ""
_MAX_NAMED = 10  # customers named in a conflict message
_log = logging.getLogger(__name__)

#: ``observe(operation, seconds)``: called once per Redis round trip.
Observer = Callable[[str, float], None]


class RedisStateConflictError(StateConflictError):
    """Some customers' state changed since it was loaded; ``customers`` lists them.

    The other customers of the batch were written (their ``version`` was bumped).
    """

    def __init__(self, customers: Sequence[str]) -> None:
        self.customers: tuple[str, ...] = tuple(customers)
        named = ", ".join(self.customers[:_MAX_NAMED])
        more = f" (+{len(self.customers) - _MAX_NAMED} more)" if len(customers) > _MAX_NAMED else ""
        super().__init__(
            f"state changed since it was loaded for {len(self.customers)} customer(s): "
            f"{named}{more}"
        )


class RedisStateStore(SeenMarkers, StateStore):
    """Customer state in Redis (msgpack), with per-customer optimistic concurrency.

    ``partition`` picks the follow-up index this store writes and reads by default (the
    worker passes its Kafka partition); ``save`` and ``due_customers`` take an explicit
    ``partition`` too, and :meth:`with_partition` gives a view sharing the connection.

    Dedupe markers (:meth:`mark_seen`, :meth:`seen`): :mod:`connectors.redis.markers`.

    ``round_trips`` counts every request sent to Redis (one per pipeline execute or
    single command), so tests and benchmarks can check the one-read-one-write budget.

    ``observe``, when set, is called as ``observe(operation, seconds)`` once per round trip
    (success or failure; a NOSCRIPT retry is a second call). The operations:

    * ``"load"`` — :meth:`load` and :meth:`read_batch` (states, other keys, due queries)
    * ``"quarantine"`` — the copy of undecodable states (only when there are some)
    * ``"save"`` — :meth:`save` and :meth:`save_batch` (the checked write script)
    * ``"due"`` — :meth:`due_customers`
    * ``"pending"`` — :meth:`pending_followups`
    * ``"mark_seen"`` and ``"seen"`` — the dedupe markers

    :meth:`with_partition` views share the ``observe`` set at the time they are made.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        partition: int = 0,
        state_ttl_seconds: int = 90 * 86400,
        dedupe_ttl_seconds: int = 7 * 86400,
        owns_client: bool = True,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain '{' or '}' (hash tags)")
        if state_ttl_seconds < 1 or dedupe_ttl_seconds < 1:
            raise ValueError("TTLs must be at least one second")
        self._redis = client
        self.prefix = prefix
        self.partition = partition
        self.state_ttl_seconds = state_ttl_seconds
        self.dedupe_ttl_seconds = dedupe_ttl_seconds
        self._owns_client = owns_client
        self._script_cached = False
        self.round_trips = 0
        self.observe: Observer | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: TactSettings,
        *,
        partition: int = 0,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        retries: int = 2,
    ) -> Self:
        """A store on ``settings.redis_url`` (``redis_password`` and ``redis_tls`` applied).

        redis-py resends a request ``retries`` times on a connection error or timeout
        (short jittered backoff); after that the error surfaces as :class:`StateStoreError`
        and the worker backs off. Resending a save is safe: the script recognises its own
        earlier write. The URL and password are never put in a message or a log.
        """
        client = client_from_settings(settings, socket_timeout=socket_timeout,
                                      connect_timeout=connect_timeout, retries=retries)
        return cls(
            client,
            prefix=prefix,
            partition=partition,
            state_ttl_seconds=settings.state_ttl_seconds,
            dedupe_ttl_seconds=settings.dedupe_ttl_seconds,
        )

    def with_partition(self, partition: int) -> RedisStateStore:
        """The same store (same connection pool) writing and reading ``partition``'s index.

        The view does not own the connection: closing it is a no-op.
        """
        view = RedisStateStore(
            self._redis,
            prefix=self.prefix,
            partition=partition,
            state_ttl_seconds=self.state_ttl_seconds,
            dedupe_ttl_seconds=self.dedupe_ttl_seconds,
            owns_client=False,
        )
        view._script_cached = self._script_cached
        view.observe = self.observe
        return view

    def shares_server(self, client: object) -> bool:
        """Whether ``client`` (a redis-py client) reaches the same server and database."""
        mine = server_of(self._redis)
        return mine is not None and mine == server_of(client)

    def __repr__(self) -> str:
        return f"RedisStateStore(prefix={self.prefix!r}, partition={self.partition})"

    # -- keys ---------------------------------------------------------------------------
    def state_key(self, customer: str) -> str:
        return f"{self.prefix}{{{customer}}}:state"

    def quarantine_key(self, customer: str) -> str:
        return f"{self.prefix}{{{customer}}}:quarantine"

    @property
    def client(self) -> Redis:
        return self._redis

    def followups_key(self, partition: int | None = None) -> str:
        return f"{self.prefix}followups:{self.partition if partition is None else partition}"

    # -- StateStore ---------------------------------------------------------------------
    async def load(self, customers: Collection[str]) -> dict[str, CustomerState]:
        """Every customer's state (fresh for unknown ones) in one round trip (MGET).

        Raises :class:`StateCorruptError` if some do not decode (quarantined as in
        :meth:`read_batch`, which returns them apart instead).
        """
        got = await self.read_batch(customers)
        if got.quarantined:
            raise StateCorruptError(got.quarantined)
        return got.states

    async def read_batch(
        self,
        customers: Collection[str],
        *,
        keys: Sequence[str] = (),
        due: Sequence[tuple[int, float, int]] = (),
    ) -> BatchRead:
        """States, the raw values of other ``keys`` and due customers, in one round trip.

        ``due`` asks, per ``(partition, now, limit)``, what :meth:`due_customers` answers.
        Just states: one MGET; with more: one pipeline (MGET states, MGET keys, a
        ZRANGEBYSCORE per due query). A state that does not decode puts its customer in
        ``quarantined`` (not in ``states``) and is copied to :meth:`quarantine_key`, in one
        more round trip.
        """
        ids = list(dict.fromkeys(customers))
        mget = [self.state_key(c) for c in ids] + list(keys)  # one MGET for all the strings
        if not mget and not due:
            return BatchRead({})
        replies: list[Any] = []
        with self._trip("load"):
            if not due:
                values: list[Any] = await self._redis.mget(mget)
            else:
                async with self._redis.pipeline(transaction=False) as pipe:
                    if mget:
                        pipe.mget(mget)
                    for p, now, limit in due:
                        pipe.zrangebyscore(self.followups_key(p), "-inf", repr(float(now)),
                                           start=0, num=max(limit, 1))
                    replies = await pipe.execute()
                values = replies.pop(0) if mget else []
        found = [[text(m) for m in ms][: max(limit, 0)]
                 for ms, (_, _, limit) in zip(replies, due, strict=True)]
        n = len(ids)
        states, corrupt = decode_values(ids, values[:n])
        quarantined = await self._quarantine(corrupt) if corrupt else {}
        return BatchRead(states, values[n:], found, quarantined)

    async def save(
        self, states: Mapping[str, CustomerState], *, partition: int | None = None
    ) -> None:
        """Write the states in one round trip, each only if unchanged since it was loaded.

        Written states get ``version`` bumped. If some customers conflict, the others are
        still written and :class:`RedisStateConflictError` names the conflicting ones.
        """
        await self.save_batch({self.partition if partition is None else partition: states})

    async def save_batch(
        self,
        by_partition: Mapping[int, Mapping[str, CustomerState]],
        writes: Sequence[tuple[str, bytes | None]] = (),
    ) -> None:
        """One atomic write: ``writes`` (key, value; None deletes) first, then every state.

        Each partition's states go to that partition's follow-up index; a customer must
        appear under one partition only. Conflicts as in :meth:`save`: the others (and
        ``writes``) are written, then :class:`RedisStateConflictError` is raised.
        """
        customers: list[str] = []
        written: list[CustomerState] = []
        skeys: list[str] = []
        index_keys: list[str] = []
        rows: list[list[Any]] = []
        wall = time.time()
        for partition, states in by_partition.items():
            if not states:
                continue
            index_keys.append(self.followups_key(partition))
            n_index = len(index_keys)
            for c, st in states.items():
                due = st.next_due()
                customers.append(c)
                written.append(st)
                skeys.append(self.state_key(c))
                rows.append([st.version, pack_stored(st, st.version + 1), self._ttl(due, wall), c,
                             _NOT_DUE if due is None else repr(float(due)), n_index])
        if not customers and not writes:
            return
        keys = [k for k, _ in writes] + skeys + index_keys
        argv: list[bytes | int] = [len(writes)]
        argv += [b"" if v is None else v for _, v in writes]
        argv.append(msgpack.packb(rows, use_bin_type=False))
        try:
            with self._trip("save"):
                results: list[int] = await self._script(len(keys), keys, argv)
        except StateStoreError as exc:
            if not isinstance(exc.__cause__, NoScriptError):
                raise
            self._script_cached = False  # server restarted or SCRIPT FLUSH: nothing ran
            with self._trip("save"):
                results = await self._script(len(keys), keys, argv)
        conflicts: list[str] = []
        for c, st, res in zip(customers, written, results, strict=True):
            v = int(res)
            if v >= 0:
                st.version = v
            else:
                conflicts.append(c)
        if conflicts:
            raise RedisStateConflictError(conflicts)

    async def due_customers(
        self, now: float, limit: int = 1000, partition: int | None = None
    ) -> list[str]:
        """Customers of ``partition`` (default: the store's) with a follow-up due by ``now``.

        Earliest first. Entries leave the index when a save finds nothing pending.
        """
        if limit <= 0:
            return []
        with self._trip("due"):
            members: list[Any] = await self._redis.zrangebyscore(
                self.followups_key(partition), "-inf", repr(float(now)), start=0, num=limit
            )
        return [text(m) for m in members]

    async def pending_followups(self, partitions: Iterable[int]) -> int:
        """Customers with a follow-up pending in these partitions' indexes (ZCARD each, one
        pipeline); 0 when no partition is given."""
        parts = list(dict.fromkeys(partitions))
        if not parts:
            return 0
        with self._trip("pending"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for p in parts:
                    pipe.zcard(self.followups_key(p))
                counts: list[int] = await pipe.execute()
        return sum(int(n) for n in counts)

    async def close(self) -> None:
        if self._owns_client:
            with redis_errors("close"):
                await self._redis.aclose()

    # -- internals ----------------------------------------------------------------------
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

    async def _quarantine(self, corrupt: Mapping[str, tuple[str, bytes]]) -> dict[str, str]:
        """Copy each raw value to its quarantine key (the first copy stays); the reasons."""
        with self._trip("quarantine"):
            await copy_raw(self._redis, {self.quarantine_key(c): raw
                                         for c, (_, raw) in corrupt.items()})
        for c, (reason, raw) in corrupt.items():
            _log.warning("customer %s: stored state quarantined (%s); its %d bytes are kept "
                         "at %s until `tact state repair|reset`", c, reason, len(raw),
                         self.quarantine_key(c))
        return {c: f"state_corrupt: {reason}" for c, (reason, _) in corrupt.items()}

    def ttl_for(self, state: CustomerState) -> int:
        """The TTL a save gives ``state`` now (see :meth:`_ttl`)."""
        return self._ttl(state.next_due(), time.time())

    def _ttl(self, due: float | None, wall: float) -> int:
        """The state's TTL: ``state_ttl_seconds``, stretched to outlive a pending follow-up.

        (Follow-up times are event time; wall time is close enough for a lifetime.)
        """
        ttl = self.state_ttl_seconds
        if due is not None and math.isfinite(due) and due > wall:
            ttl = max(ttl, math.ceil(due - wall) + self.state_ttl_seconds)
        return ttl

    async def _script(self, nkeys: int, keys: list[str], argv: list[Any]) -> list[int]:
        """The save script: EVALSHA once the server is known to have it, EVAL before."""
        if self._script_cached:
            res: list[int] = await self._redis.evalsha(
                scripts.SAVE_BATCH_SHA, nkeys, *keys, *argv)
        else:
            res = await self._redis.eval(
                scripts.SAVE_BATCH, nkeys, *keys, *argv)
            self._script_cached = True
        return res
