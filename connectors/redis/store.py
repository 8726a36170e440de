"""The Redis state store: one pipelined read and one pipelined write per batch.

Key layout (``prefix`` defaults to ``tact:``; tests use ``tact-test-<uuid>:``)::

    {prefix}{<customer>}:state     string: version (16 hex digits) + msgpack state   TTL
    {prefix}followups:<partition>  sorted set: customer -> next follow-up due time
    {prefix}seen:<event id>        dedupe marker ("1")                               TTL

One key per customer, a plain string: the version is a fixed-width header in front of the
blob (and also inside it, ``CustomerState.version``), so the save script reads 16 bytes
(GETRANGE) to check it. A string costs less memory than a hash holding the same blob (a
state blob is longer than a listpack entry may be, so a hash would be a real hashtable).

Round trips: ``load`` is one non-transactional pipeline of GETs; ``save`` is one pipeline
of EVALSHAs, one per customer, each checking the customer's version and writing the blob,
its TTL and the follow-up index atomically. The first save of a store sends EVAL (which
also caches the script on the server); a NOSCRIPT answer (server restarted or SCRIPT FLUSH)
resends just those customers with EVAL, one extra round trip that time only.

Concurrency is optimistic and per customer: in a batch, the customers whose stored version
still equals the loaded one are written, the others are not and the save raises
:class:`RedisStateConflictError` naming them. The caller reloads and retries those only
(the written ones already carry their new ``version``). Nothing is lost when two workers
overlap during a rebalance: the loser's write is refused, never applied over the winner's.
A state that expired (TTL) since it was loaded also counts as a conflict.

Redis Cluster: the layout is ready for it, the class is not yet. Every state key carries
its customer as a hash tag and reads are a non-transactional pipeline of single-key
commands (MGET would not be cluster safe across slots), which a cluster pipeline can split
into one batch per node. But the save script also touches the partition's follow-up
index, which lives in another slot (CROSSSLOT on a cluster), and the client here is a
single-node ``redis.asyncio.Redis`` (a primary, possibly with replicas). A cluster
deployment needs the index moved next to each state, or written in a second step, and a
``RedisCluster`` client.

TTL: every save resets the state's TTL (``state_ttl_seconds``, stretched so that a state
outlives its pending follow-up). A follow-up index entry can outlive its state only if the
key is deleted by hand; such an entry comes back from ``due_customers`` until a save of
that customer clears it.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import msgpack
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import NoScriptError, RedisError

from connectors.redis.scripts import SAVE_STATE, SAVE_STATE_SHA, VERSION_DIGITS
from engine.config import TactSettings
from engine.errors import StateConflictError, StateStoreError
from engine.models.state import CustomerState
from engine.state.base import StateStore

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
_HEADER = re.compile(rb"[0-9a-f]{%d}" % VERSION_DIGITS)


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


# -- wire form --------------------------------------------------------------------------
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
    if not 0 <= version < 16**VERSION_DIGITS:
        raise ValueError(f"version out of range: {version}")
    return f"{version:0{VERSION_DIGITS}x}".encode("ascii") + encode_state(state, version=version)


def unpack_stored(value: bytes) -> CustomerState:
    """The inverse of :func:`pack_stored`; the header's version wins (raises ``ValueError``)."""
    head = value[:VERSION_DIGITS]
    if _HEADER.fullmatch(head) is None:
        raise ValueError(f"bad version header {head!r}")
    version = int(head, 16)
    state = decode_state(value[VERSION_DIGITS:])
    state.version = version
    return state


# -- errors -----------------------------------------------------------------------------
@contextmanager
def _redis_errors(operation: str) -> Iterator[None]:
    """Translate redis-py (and socket) errors into :class:`StateStoreError`, cause chained.

    The message names the exception and redis-py's text (host:port at most, never the URL
    or a password).
    """
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StateStoreError(f"redis {operation} failed: {type(exc).__name__}: {exc}") from exc


def _with_tls(url: str) -> str:
    """``redis://`` becomes ``rediss://``; other schemes are left alone."""
    parts = urlsplit(url)
    if parts.scheme == "redis":
        return urlunsplit(parts._replace(scheme="rediss"))
    return url


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class RedisStateStore(StateStore):
    """Customer state in Redis (msgpack), with per-customer optimistic concurrency.

    ``partition`` picks the follow-up index this store writes and reads by default (the
    worker passes its Kafka partition); ``save`` and ``due_customers`` take an explicit
    ``partition`` too, and :meth:`with_partition` gives a view sharing the connection.

    Dedupe: ``CustomerState.seen`` already dedupes events inside the state, which is what
    the pipeline uses: it costs nothing extra since the state is loaded anyway. The
    :meth:`mark_seen` / :meth:`seen` markers (``SET NX EX``) are for callers that must
    drop duplicates *before* loading any state (an ingestion edge, a webhook receiver),
    or that must remember an event longer than the state itself lives.

    ``round_trips`` counts every request sent to Redis (one per pipeline execute or
    single command), so tests and benchmarks can check the one-read-one-write budget.
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
        url = settings.redis_url.get_secret_value()
        if settings.redis_tls:
            url = _with_tls(url)
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        try:
            client = Redis.from_url(
                url,
                password=password,
                socket_timeout=socket_timeout,
                socket_connect_timeout=connect_timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries),
                decode_responses=False,
            )
        except ValueError:
            # redis-py's message may quote the URL, which may carry a password.
            raise ValueError("TACT_REDIS_URL is not a valid Redis URL (not shown)") from None
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
        return view

    def __repr__(self) -> str:
        return f"RedisStateStore(prefix={self.prefix!r}, partition={self.partition})"

    # -- keys ---------------------------------------------------------------------------
    def state_key(self, customer: str) -> str:
        return f"{self.prefix}{{{customer}}}:state"

    def followups_key(self, partition: int | None = None) -> str:
        return f"{self.prefix}followups:{self.partition if partition is None else partition}"

    def seen_key(self, event_id: str) -> str:
        return f"{self.prefix}seen:{event_id}"

    # -- StateStore ---------------------------------------------------------------------
    async def load(self, customers: Collection[str]) -> dict[str, CustomerState]:
        """Every customer's state (fresh for unknown ones) in one round trip."""
        ids = list(dict.fromkeys(customers))
        if not ids:
            return {}
        with _redis_errors("load"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for c in ids:
                    pipe.get(self.state_key(c))
                self.round_trips += 1
                values: list[bytes | None] = await pipe.execute()
        out: dict[str, CustomerState] = {}
        for c, value in zip(ids, values, strict=True):
            if value is None:
                out[c] = CustomerState(c)
                continue
            try:
                out[c] = unpack_stored(value)
            except ValueError as exc:
                raise StateStoreError(f"customer {c}: unreadable stored state: {exc}") from exc
        return out

    async def save(
        self, states: Mapping[str, CustomerState], *, partition: int | None = None
    ) -> None:
        """Write the states in one round trip, each only if unchanged since it was loaded.

        Written states get ``version`` bumped. If some customers conflict, the others are
        still written and :class:`RedisStateConflictError` names the conflicting ones.
        """
        if not states:
            return
        index = self.followups_key(partition)
        customers = list(states)
        calls: list[tuple[list[str], list[str | bytes | int]]] = []
        wall = time.time()
        for c in customers:
            st = states[c]
            due = st.next_due()
            calls.append(
                (
                    [self.state_key(c), index],
                    [
                        st.version,
                        pack_stored(st, st.version + 1),
                        self._ttl(due, wall),
                        c,
                        _NOT_DUE if due is None else repr(float(due)),
                    ],
                )
            )
        with _redis_errors("save"):
            results = await self._run_save_scripts(calls)
        conflicts: list[str] = []
        errors: list[tuple[str, Exception]] = []
        for c, res in zip(customers, results, strict=True):
            if isinstance(res, Exception):
                errors.append((c, res))
            elif int(res[0]) == 1:
                states[c].version = int(res[1])
            else:
                conflicts.append(c)
        if errors:
            c, exc = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise StateStoreError(
                f"redis save failed for customer {c}{more}: {type(exc).__name__}: {exc}"
            ) from exc
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
        with _redis_errors("due_customers"):
            self.round_trips += 1
            members: list[Any] = await self._redis.zrangebyscore(
                self.followups_key(partition), "-inf", repr(float(now)), start=0, num=limit
            )
        return [_text(m) for m in members]

    async def close(self) -> None:
        if self._owns_client:
            with _redis_errors("close"):
                await self._redis.aclose()

    # -- dedupe markers -----------------------------------------------------------------
    async def mark_seen(self, event_ids: Sequence[str]) -> list[bool]:
        """Mark event ids as seen (``SET NX EX dedupe_ttl``) in one round trip.

        Returns, for each id, True if it had been seen before (a duplicate) and False if
        this call marked it first. An id repeated within the call is a duplicate the
        second time.
        """
        if not event_ids:
            return []
        with _redis_errors("mark_seen"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for ev in event_ids:
                    pipe.set(self.seen_key(ev), b"1", nx=True, ex=self.dedupe_ttl_seconds)
                self.round_trips += 1
                results: list[bool | None] = await pipe.execute()
        return [not bool(r) for r in results]

    async def seen(self, event_ids: Sequence[str]) -> list[bool]:
        """For each id, whether it is marked as seen (one round trip, marks nothing)."""
        if not event_ids:
            return []
        with _redis_errors("seen"):
            async with self._redis.pipeline(transaction=False) as pipe:
                for ev in event_ids:
                    pipe.exists(self.seen_key(ev))
                self.round_trips += 1
                results: list[int] = await pipe.execute()
        return [bool(r) for r in results]

    # -- internals ----------------------------------------------------------------------
    def _ttl(self, due: float | None, wall: float) -> int:
        """The state's TTL: ``state_ttl_seconds``, stretched to outlive a pending follow-up.

        (Follow-up times are event time; wall time is close enough for a lifetime.)
        """
        ttl = self.state_ttl_seconds
        if due is not None and math.isfinite(due) and due > wall:
            ttl = max(ttl, math.ceil(due - wall) + self.state_ttl_seconds)
        return ttl

    async def _run_save_scripts(
        self, calls: list[tuple[list[str], list[str | bytes | int]]]
    ) -> list[Any]:
        """One pipeline of save scripts; redo with EVAL those the server did not know."""
        results = await self._pipeline_scripts(calls, by_sha=self._script_cached)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            redo = await self._pipeline_scripts([calls[i] for i in missing], by_sha=False)
            for i, r in zip(missing, redo, strict=True):
                results[i] = r
        self._script_cached = True
        return results

    async def _pipeline_scripts(
        self, calls: Iterable[tuple[list[str], list[str | bytes | int]]], *, by_sha: bool
    ) -> list[Any]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                if by_sha:
                    pipe.evalsha(SAVE_STATE_SHA, len(keys), *keys, *args)
                else:
                    pipe.eval(SAVE_STATE, len(keys), *keys, *args)
            self.round_trips += 1
            results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
