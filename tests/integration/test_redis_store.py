"""The Redis state store against a real Redis (``TACT_REDIS_URL``, default the local one).

Every test works under its own key prefix (``tact-test-<uuid>:``) and deletes its keys.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from engine.config import TactSettings
from engine.errors import StateConflictError, StateStoreError
from engine.models.state import CustomerState, PendingFollowup, SentRecord
from engine.state.redis import RedisStateConflictError, RedisStateStore, decode_state, scripts
from tests.integration.redis_utils import (
    DEDUPE_TTL,
    STATE_TTL,
    open_store,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
SHARED_SCENARIOS = REPO.parent / "shared" / "scenarios"


def _full_state(customer: str) -> CustomerState:
    return CustomerState(
        customer=customer,
        attributes={"segment": "fashion", "tz": "Europe/Rome", "tags": ["a", "b"], "n": 3},
        consent={"push": True, "email": False},
        counters={"app_open": 4, "spend": 12.5},
        windows={"payment_failed": [1_780_000_000.0, 1_780_000_060.5]},
        timestamps={"last_purchase": 1_779_000_000.25},
        contexts={"in_transit": 1_780_010_000.0},
        history=[SentRecord("travel_tips", "push", "service", 1_780_000_100.0)],
        seen={"ev-1": 1_780_000_000.0, "ev-2": 1_780_000_060.5},
        followups=[
            PendingFollowup(
                "cart_reminder", 1_780_001_800.0, {"type": "cart_updated", "data": {"items": 2}}
            ),
            PendingFollowup("later", 1_780_009_000.0, {"type": "x", "data": {}}),
        ],
        last_event=1_780_000_060.5,
    )


# -- load / save ------------------------------------------------------------------------
async def test_load_unknown_gives_fresh_states(store: RedisStateStore, admin: redis.Redis) -> None:
    states = await store.load(["c-1", "c-2", "c-1"])
    assert states == {"c-1": CustomerState("c-1"), "c-2": CustomerState("c-2")}
    assert store.round_trips == 1
    assert await store.load([]) == {}
    assert store.round_trips == 1
    assert admin.keys(f"{store.prefix}*") == []


async def test_save_then_load_round_trips_every_field(
    store: RedisStateStore, redis_url: str, admin: redis.Redis
) -> None:
    states = await store.load(["c-1"])
    full = _full_state("c-1")
    states["c-1"] = full
    await store.save(states)
    assert full.version == 1

    other = await open_store(redis_url, store.prefix)  # a new connection: nothing cached
    try:
        again = await other.load(["c-1"])
        assert again["c-1"] == full
        assert again["c-1"].version == 1
        again["c-1"].counters["app_open"] += 1
        await other.save(again)
        assert again["c-1"].version == 2
        third = await other.load(["c-1"])
        assert third["c-1"] == again["c-1"]
    finally:
        await other.close()

    key = store.state_key("c-1")
    assert key == f"{store.prefix}{{c-1}}:state"
    value = admin.get(key)
    assert isinstance(value, bytes)
    assert value[:16] == b"0000000000000002"  # the version header the script checks
    assert decode_state(value[16:]).version == 2
    assert admin.type(key) == b"string"


class CountingConnection(Connection):
    """A real connection that counts the requests it writes to the socket."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


def _cmdstat(admin: redis.Redis, name: str) -> int:
    stats = admin.info("commandstats")
    entry = stats.get(f"cmdstat_{name}")
    return int(entry["calls"]) if entry else 0


async def test_one_round_trip_per_load_and_per_save_of_500(
    redis_url: str, prefix: str, admin: redis.Redis
) -> None:
    client = Redis.from_url(redis_url, connection_class=CountingConnection)
    store = RedisStateStore(client, prefix=prefix, state_ttl_seconds=STATE_TTL)
    try:
        await client.ping()  # connect (and its handshake) before counting
        customers = [f"c-{i}" for i in range(500)]
        for round_no in (1, 2):  # the first save sends EVAL, the next ones EVALSHA
            writes, trips = CountingConnection.writes, store.round_trips
            mget, evalsha, eval_ = (_cmdstat(admin, n) for n in ("mget", "evalsha", "eval"))

            states = await store.load(customers)
            assert (store.round_trips, CountingConnection.writes) == (trips + 1, writes + 1)
            for st in states.values():
                st.counters["n"] = st.counters.get("n", 0) + 1
                st.followups = [PendingFollowup("r", 1000.0 + round_no, {})]
            await store.save(states)
            assert (store.round_trips, CountingConnection.writes) == (trips + 2, writes + 2)

            assert all(st.version == round_no for st in states.values())
            # One MGET for the load, one script call for the whole save (others may add more).
            assert _cmdstat(admin, "mget") - mget >= 1
            calls = (_cmdstat(admin, "evalsha") - evalsha, _cmdstat(admin, "eval") - eval_)
            assert calls[0 if round_no == 2 else 1] >= 1
        assert await store.due_customers(1002.0, limit=1000) != []
        assert len(await store.due_customers(1002.0, limit=1000)) == 500
    finally:
        await store.close()


# -- optimistic concurrency ---------------------------------------------------------------
async def test_conflict_keeps_the_first_write(store: RedisStateStore, redis_url: str) -> None:
    second = await open_store(redis_url, store.prefix)
    try:
        a = await store.load(["c-1"])
        b = await second.load(["c-1"])
        a["c-1"].attributes["writer"] = "a"
        b["c-1"].attributes["writer"] = "b"
        await store.save(a)
        with pytest.raises(StateConflictError) as info:
            await second.save(b)
        assert isinstance(info.value, RedisStateConflictError)
        assert info.value.customers == ("c-1",)
        assert "c-1" in str(info.value)
        assert b["c-1"].version == 0  # not written, not bumped

        now = await store.load(["c-1"])
        assert now["c-1"].attributes == {"writer": "a"}
        assert now["c-1"].version == 1
    finally:
        await second.close()


async def test_conflict_is_per_customer(store: RedisStateStore, redis_url: str) -> None:
    second = await open_store(redis_url, store.prefix)
    try:
        a = await store.load(["c-1", "c-2"])
        b = await second.load(["c-1", "c-2", "c-3"])
        a["c-1"].counters["x"] = 1
        await store.save({"c-1": a["c-1"]})
        for st in b.values():
            st.counters["x"] = 2
        with pytest.raises(RedisStateConflictError) as info:
            await second.save(b)
        assert info.value.customers == ("c-1",)
        # The others were written; the caller reloads and retries only the conflicting one.
        assert (b["c-2"].version, b["c-3"].version) == (1, 1)
        fresh = await store.load(["c-1", "c-2", "c-3"])
        assert {c: st.counters["x"] for c, st in fresh.items()} == {"c-1": 1, "c-2": 2, "c-3": 2}
        retry = await second.load(["c-1"])
        retry["c-1"].counters["x"] += 2
        await second.save(retry)
        assert (await store.load(["c-1"]))["c-1"].counters["x"] == 3
    finally:
        await second.close()


async def test_resent_save_is_not_a_conflict(store: RedisStateStore) -> None:
    """A pipeline resent after a lost reply finds its own write: it succeeds again."""
    states = await store.load(["c-1"])
    states["c-1"].counters["x"] = 1
    await store.save(states)
    assert states["c-1"].version == 1
    states["c-1"].version = 0  # as if the reply had been lost and the same write resent
    await store.save(states)
    assert states["c-1"].version == 1
    states["c-1"].version = 0  # but a *different* write from version 0 is a conflict
    states["c-1"].counters["x"] = 2
    with pytest.raises(RedisStateConflictError):
        await store.save(states)


async def test_expired_state_counts_as_a_conflict(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    states = await store.load(["c-1"])
    await store.save(states)
    admin.delete(store.state_key("c-1"))  # what the TTL does to an inactive customer
    with pytest.raises(RedisStateConflictError):
        await store.save(states)


async def test_noscript_falls_back_to_eval(
    store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = await store.load(["c-1", "c-2"])
    await store.save(states)  # first save: EVAL, the script is now cached
    trips = store.round_trips
    # A SHA the server cannot know: what it answers after a restart or SCRIPT FLUSH.
    monkeypatch.setattr(scripts, "SAVE_BATCH_SHA", "0" * 40)
    for st in states.values():
        st.counters["x"] = 1
    await store.save(states)
    assert store.round_trips == trips + 2  # EVALSHA -> NOSCRIPT (nothing ran), then EVAL
    assert {c: st.version for c, st in states.items()} == {"c-1": 2, "c-2": 2}


# -- TTL, follow-ups, dedupe ------------------------------------------------------------
async def test_ttl_is_set_and_outlives_a_pending_followup(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    states = await store.load(["c-1", "c-2"])
    states["c-2"].followups = [PendingFollowup("r", time.time() + 10 * STATE_TTL, {})]
    await store.save(states)
    ttl_1 = admin.ttl(store.state_key("c-1"))
    ttl_2 = admin.ttl(store.state_key("c-2"))
    assert STATE_TTL - 10 <= ttl_1 <= STATE_TTL
    assert 11 * STATE_TTL - 10 <= ttl_2 <= 11 * STATE_TTL


async def test_followup_index_and_due_customers(store: RedisStateStore, admin: redis.Redis) -> None:
    states = await store.load(["c-1", "c-2", "c-3"])
    states["c-1"].followups = [PendingFollowup("r", 300.0, {}), PendingFollowup("r", 100.0, {})]
    states["c-2"].followups = [PendingFollowup("r", 200.0, {})]
    await store.save(states)
    index = store.followups_key()
    assert index == f"{store.prefix}followups:0"
    assert admin.zrange(index, 0, -1, withscores=True) == [(b"c-1", 100.0), (b"c-2", 200.0)]

    assert await store.due_customers(99.0) == []
    assert await store.due_customers(100.0) == ["c-1"]
    assert await store.due_customers(1e12) == ["c-1", "c-2"]
    assert await store.due_customers(1e12, limit=1) == ["c-1"]
    assert await store.due_customers(1e12, limit=0) == []

    states["c-1"].followups = [PendingFollowup("r", 300.0, {})]  # the earliest one fired
    states["c-2"].followups = []
    await store.save({"c-1": states["c-1"], "c-2": states["c-2"]})
    assert admin.zrange(index, 0, -1, withscores=True) == [(b"c-1", 300.0)]
    assert await store.due_customers(250.0) == []
    assert await store.due_customers(300.0) == ["c-1"]


async def test_followup_partitions(store: RedisStateStore, admin: redis.Redis) -> None:
    p3 = store.with_partition(3)
    states = await p3.load(["c-1"])
    states["c-1"].followups = [PendingFollowup("r", 50.0, {})]
    await p3.save(states)
    await p3.close()  # a view: the shared connection stays open
    assert admin.exists(f"{store.prefix}followups:3") == 1
    assert await store.due_customers(60.0) == []
    assert await store.due_customers(60.0, partition=3) == ["c-1"]
    states["c-1"].followups = []
    await store.save(states, partition=3)
    assert await store.due_customers(60.0, partition=3) == []


async def test_dedupe_markers(store: RedisStateStore, admin: redis.Redis) -> None:
    assert await store.mark_seen(["ev-1", "ev-2", "ev-1"]) == [False, False, True]
    assert store.round_trips == 1
    assert await store.mark_seen(["ev-2", "ev-3"]) == [True, False]
    assert await store.seen(["ev-1", "ev-3", "ev-4"]) == [True, True, False]
    assert store.round_trips == 3
    assert await store.seen([]) == [] and await store.mark_seen([]) == []
    ttl = admin.ttl(store.seen_key("ev-1"))
    assert DEDUPE_TTL - 10 <= ttl <= DEDUPE_TTL


# -- errors -----------------------------------------------------------------------------
async def test_unreachable_redis_is_a_state_store_error() -> None:
    settings = TactSettings(redis_url=SecretStr("redis://:hunter2@127.0.0.1:1/0"))
    store = RedisStateStore.from_settings(settings, retries=0, connect_timeout=0.5)
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.load(["c-1"]),
            lambda: store.save({"c-1": CustomerState("c-1")}),
            lambda: store.due_customers(1.0),
            lambda: store.mark_seen(["ev-1"]),
            lambda: store.seen(["ev-1"]),
        ]
        for call in calls:
            with pytest.raises(StateStoreError) as info:
                await call()
            assert not isinstance(info.value, StateConflictError)
            assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
            assert "hunter2" not in str(info.value)
        assert "hunter2" not in repr(store)
    finally:
        await store.close()


async def test_response_errors_are_state_store_errors(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    admin.hset(store.state_key("c-1"), mapping={"not": "a string"})
    # MGET answers nil for a key of another type: the load sees no state...
    assert await store.load(["c-1"]) == {"c-1": CustomerState("c-1")}
    # ...but the save's version check hits the hash and refuses, overwriting nothing,
    # not even the other customer of the call (every check runs before any write).
    with pytest.raises(StateStoreError) as info:
        await store.save({"c-2": CustomerState("c-2"), "c-1": CustomerState("c-1")})
    assert not isinstance(info.value, StateConflictError)
    assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)
    assert admin.type(store.state_key("c-1")) == b"hash"
    assert admin.exists(store.state_key("c-2")) == 0


async def test_unreadable_blob_is_a_state_store_error(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    key = store.state_key("c-1")
    for value in (b"0000000000000001\xc1garbage", b"not-a-version-header", b"short"):
        admin.set(key, value)
        with pytest.raises(StateStoreError, match="c-1"):
            await store.load(["c-1"])
    admin.set(key, b"zzzzzzzzzzzzzzzz" + b"\x90")
    with pytest.raises(StateStoreError, match="unreadable tact state header") as info:
        await store.save({"c-1": CustomerState("c-1")})
    assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)


def test_settings_apply_tls_and_password() -> None:
    settings = TactSettings(
        redis_url=SecretStr("redis://127.0.0.1:6380/2"),
        redis_password=SecretStr("s3cret"),
        redis_tls=True,
    )
    store = RedisStateStore.from_settings(settings)
    kwargs = store._redis.connection_pool.connection_kwargs
    assert store._redis.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6380, 2)
    assert kwargs["password"] == "s3cret"
    assert "s3cret" not in repr(store) and "s3cret" not in repr(settings)


def test_hiredis_parses_replies() -> None:
    from redis.asyncio.connection import DefaultParser

    assert DefaultParser.__name__ == "_AsyncHiredisParser"


def test_prefix_must_not_hold_hash_tags(redis_url: str) -> None:
    with pytest.raises(ValueError):
        RedisStateStore(Redis.from_url(redis_url), prefix="tact:{x}:")
