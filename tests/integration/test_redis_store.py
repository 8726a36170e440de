"""The Redis state store against a real Redis, and (tests taking ``target``) against the
local Redis Cluster too: reads, writes with marks, restores, TTLs, errors, settings.

Every test works under its own key prefix (``tact-test-<uuid>:``) and deletes its keys.
"""

from __future__ import annotations

import time

import pytest
import redis
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from engine.config import TactSettings
from engine.errors import StateStoreError
from engine.models.state import CustomerState, PendingFollowup, SentRecord
from engine.state.base import PartitionWrite
from engine.state.redis import RedisStateStore, partition_of
from engine.state.wire import pack_stored, unpack_stored
from tests.integration.redis_utils import STATE_TTL, Admin, Target, encoded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _full_state(customer: str) -> CustomerState:
    return CustomerState(
        customer=customer,
        version=7,
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


def _with(customer: str, **kw: object) -> CustomerState:
    return CustomerState(customer, **kw)  # type: ignore[arg-type]


# -- read / write -----------------------------------------------------------------------
async def test_read_of_unknown_customers_gives_fresh_states_and_writes_nothing(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    got = await any_store.read({"c-1": 0, "c-2": 4}, marks=[0, 4])
    assert got.states == {"c-1": CustomerState("c-1"), "c-2": CustomerState("c-2")}
    assert got.marks == {0: None, 4: None} and got.quarantined == {} and got.due == []
    assert await any_store.load([]) == {}
    assert list(any_admin.scan_iter(match=f"{any_store.prefix}*")) == []


async def test_write_then_read_round_trips_every_field(
    any_store: RedisStateStore, target: Target, any_admin: Admin
) -> None:
    full = _full_state("c-1")
    assert await any_store.write({3: PartitionWrite({"c-1": encoded(full)})}) == set()
    other = RedisStateStore.from_settings(target.settings(), prefix=any_store.prefix)
    try:  # a new connection: nothing cached
        again = (await other.read({"c-1": 3})).states["c-1"]
    finally:
        await other.close()
    assert again == full and again.version == 7
    key = any_store.state_key("c-1", 3)
    assert key == f"{any_store.prefix}{{p3}}:s:c-1"
    value = any_admin.get(key)
    assert isinstance(value, bytes) and value == pack_stored(full, 7)
    assert value[:16] == b"0000000000000007"
    # elsewhere: another partition's key
    assert (await any_store.read({"c-1": 2})).states["c-1"] == CustomerState("c-1")


async def test_write_applies_states_and_mark_per_partition(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    await any_store.restore(1, [], 10, fresh=True)  # partitions 1 and 2 exist (have marks)
    await any_store.restore(2, [], 20, fresh=True)
    a, b, c = _with("a", counters={"n": 1}), _with("b", counters={"n": 2}), _with("c")
    refused = await any_store.write({1: PartitionWrite({"a": encoded(a), "b": encoded(b)}, 11),
                                     2: PartitionWrite({"c": encoded(c)}, 25),
                                     5: PartitionWrite({}, None)})  # nothing: skipped
    assert refused == set()
    got = await any_store.read({"a": 1, "b": 1, "c": 2}, marks=[1, 2, 5])
    assert got.marks == {1: 11, 2: 25, 5: None}
    assert got.states["a"].counters == {"n": 1} and got.states["b"].counters == {"n": 2}
    assert any_admin.get(any_store.keys.mark(1)) == b"11"
    # a mark alone moves the mark
    assert await any_store.write({1: PartitionWrite({}, 12)}) == set()
    assert (await any_store.read({}, marks=[1])).marks == {1: 12}


async def test_write_is_refused_whole_when_the_mark_is_missing_or_ahead(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    old = _with("a", counters={"n": 1}, followups=[PendingFollowup("r", 100.0, {})])
    await any_store.restore(0, [("a", pack_stored(old, 1), time.time())], 50, fresh=True)
    new = _with("a", counters={"n": 2})
    fresh_one = _with("z", followups=[PendingFollowup("r", 10.0, {})])
    rows = {"a": encoded(new, 2), "z": encoded(fresh_one, 1)}
    before = sorted(any_admin.scan_iter(match=f"{any_store.prefix}*"))
    # partition 0's mark is ahead (a newer writer); partition 3 has none (the store lost it)
    refused = await any_store.write({0: PartitionWrite(rows, 49), 3: PartitionWrite(rows, 7)})
    assert refused == {0, 3}
    assert sorted(any_admin.scan_iter(match=f"{any_store.prefix}*")) == before
    got = await any_store.read({"a": 0, "z": 0}, due=[(0, 1e12, 10)], marks=[0, 3])
    assert got.states["a"].counters == {"n": 1} and got.states["z"] == CustomerState("z")
    assert got.due == [["a"]] and got.marks == {0: 50, 3: None}
    # the same mark again, or a later one, is applied
    assert await any_store.write({0: PartitionWrite(rows, 50)}) == set()
    assert (await any_store.read({"a": 0})).states["a"].counters == {"n": 2}
    assert await any_store.due_customers(1e12, partition=0) == ["z"]


async def test_resending_the_same_write_is_harmless(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    """A write resent after a lost reply finds its own mark: it writes the same again."""
    await any_store.restore(4, [], 1, fresh=True)
    st = _with("c-1", counters={"x": 1}, followups=[PendingFollowup("r", 5.0, {})])
    batch = {4: PartitionWrite({"c-1": encoded(st, 1)}, 2)}
    assert await any_store.write(batch) == set()
    value, due = any_admin.get(any_store.state_key("c-1", 4)), any_admin.zrange(
        any_store.keys.due(4), 0, -1, withscores=True)
    assert await any_store.write(batch) == set()
    assert any_admin.get(any_store.state_key("c-1", 4)) == value
    assert any_admin.zrange(any_store.keys.due(4), 0, -1, withscores=True) == due == [
        (b"c-1", 5.0)]
    assert (await any_store.read({}, marks=[4])).marks == {4: 2}


async def test_noscript_after_script_flush_is_retried_with_eval(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    parts = range(6)  # on the cluster: every node
    for p in parts:
        await any_store.restore(p, [], 1, fresh=True)  # EVAL: the script is cached now
    any_admin.script_flush()  # a restart or a failover loses the cache
    trips = any_store.round_trips
    states = {p: _with(f"c-{p}", counters={"n": p}) for p in parts}
    refused = await any_store.write({p: PartitionWrite({st.customer: encoded(st)}, 2)
                                     for p, st in states.items()})
    assert refused == set()
    assert any_store.round_trips > trips + 1  # EVALSHA -> NOSCRIPT (nothing ran), then EVAL
    got = await any_store.read({st.customer: p for p, st in states.items()}, marks=parts)
    assert {c: st.counters for c, st in got.states.items()} == {
        f"c-{p}": {"n": p} for p in parts}
    assert got.marks == dict.fromkeys(parts, 2)


# -- follow-ups, TTL --------------------------------------------------------------------
async def test_due_followups_are_queried_never_removed(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    c1 = _with("c-1", followups=[PendingFollowup("r", 300.0, {}), PendingFollowup("r", 100.0, {})])
    c2 = _with("c-2", followups=[PendingFollowup("r", 200.0, {})])
    await any_store.write({0: PartitionWrite({"c-1": encoded(c1), "c-2": encoded(c2),
                                              "c-3": encoded(_with("c-3"))})})
    assert any_admin.zrange(any_store.keys.due(0), 0, -1, withscores=True) == [
        (b"c-1", 100.0), (b"c-2", 200.0)]
    got = await any_store.read({}, due=[(0, 99.0, 10), (0, 100.0, 10), (0, 1e12, 10),
                                        (0, 1e12, 1), (0, 1e12, 0), (3, 1e12, 10)])
    assert got.due == [[], ["c-1"], ["c-1", "c-2"], ["c-1"], [], []]
    assert await any_store.due_customers(1e12, partition=0) == ["c-1", "c-2"]  # still there
    assert await any_store.pending_followups([0]) == 2

    c1.followups = [PendingFollowup("r", 300.0, {})]  # the earliest one fired
    c2.followups = []
    await any_store.write({0: PartitionWrite({"c-1": encoded(c1), "c-2": encoded(c2)})})
    assert any_admin.zrange(any_store.keys.due(0), 0, -1, withscores=True) == [(b"c-1", 300.0)]
    assert await any_store.due_customers(250.0, partition=0) == []
    assert await any_store.due_customers(300.0, partition=0) == ["c-1"]


async def test_pending_followups_counts_each_partitions_index(any_store: RedisStateStore) -> None:
    def due(c: str) -> tuple[CustomerState, bytes]:
        return encoded(_with(c, followups=[PendingFollowup("r", 50.0, {})]))

    await any_store.write({0: PartitionWrite({"a": due("a"), "d": encoded(_with("d"))}),
                           1: PartitionWrite({"b": due("b")}), 2: PartitionWrite({"c": due("c")})})
    trips = any_store.round_trips
    assert await any_store.pending_followups([0, 1]) == 2
    assert await any_store.pending_followups(iter([2, 2, 5])) == 1
    assert any_store.round_trips == trips + 2
    assert await any_store.pending_followups([]) == 0
    assert any_store.round_trips == trips + 2  # nothing asked: no call
    await any_store.write({0: PartitionWrite({"a": encoded(_with("a"))})})
    assert await any_store.pending_followups(range(6)) == 2


async def test_write_ttl_is_set_and_outlives_a_pending_followup(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    later = _with("c-2", followups=[PendingFollowup("r", time.time() + 10 * STATE_TTL, {})])
    await any_store.write({0: PartitionWrite({"c-1": encoded(_with("c-1")),
                                              "c-2": encoded(later)})})
    assert STATE_TTL - 10 <= any_admin.ttl(any_store.state_key("c-1", 0)) <= STATE_TTL
    assert 11 * STATE_TTL - 10 <= any_admin.ttl(any_store.state_key("c-2", 0)) <= 11 * STATE_TTL


# -- restore ----------------------------------------------------------------------------
async def test_fresh_restore_wipes_states_and_index_but_keeps_quarantine_copies(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    stale = _with("gone", followups=[PendingFollowup("r", 5.0, {})])
    other = _with("other", counters={"n": 1})
    await any_store.write({2: PartitionWrite({"gone": encoded(stale)}),
                           3: PartitionWrite({"other": encoded(other)})})
    any_admin.set(any_store.quarantine_key("bad", 2), b"the raw value an operator needs")
    kept = _with("kept", consent={"email": True}, followups=[PendingFollowup("r", 50.0, {})])
    now = time.time()
    applied = await any_store.restore(2, [("kept", pack_stored(kept, 3), now),
                                          ("dropped", None, now)], 10, fresh=True)
    assert applied == 2
    got = await any_store.read({"kept": 2, "gone": 2, "other": 3}, due=[(2, 1e12, 10)],
                               marks=[2])
    assert got.states["kept"].consent == {"email": True} and got.states["kept"].version == 3
    assert got.states["gone"] == CustomerState("gone")  # a rebuild drops what it lacks
    assert got.states["other"] == other  # another partition is not touched
    assert got.due == [["kept"]] and got.marks == {2: 10}
    assert any_admin.get(any_store.quarantine_key("bad", 2)) == b"the raw value an operator needs"
    assert await any_store.partition_keys(2) == 1
    # catching up applies on top; a tombstone deletes the state and its index entry
    await any_store.restore(2, [("kept", None, now)], 12, fresh=False)
    got = await any_store.read({"kept": 2}, due=[(2, 1e12, 10)], marks=[2])
    assert got.states["kept"] == CustomerState("kept") and got.marks == {2: 12}
    assert got.due == [[]] and await any_store.partition_keys(2) == 0


async def test_fresh_restore_of_a_large_partition_deletes_every_state(
    any_store: RedisStateStore,
) -> None:
    rows = {f"c-{i}": encoded(_with(f"c-{i}")) for i in range(2500)}  # > 2 DEL chunks
    await any_store.write({1: PartitionWrite(rows)})
    assert await any_store.partition_keys(1) == 2500
    await any_store.restore(1, [], 3, fresh=True)
    assert await any_store.partition_keys(1) == 0


async def test_catching_up_is_refused_without_a_mark_or_behind_it(
    any_store: RedisStateStore,
) -> None:
    record = ("a", pack_stored(_with("a", counters={"n": 1}), 1), time.time())
    with pytest.raises(StateStoreError, match="holds no mark"):  # the store lost it meanwhile
        await any_store.restore(0, [record], 5, fresh=False)
    await any_store.restore(0, [], 8, fresh=True)
    with pytest.raises(StateStoreError, match="past 6"):  # a newer writer got there
        await any_store.restore(0, [record], 6, fresh=False)
    got = await any_store.read({"a": 0}, marks=[0])
    assert got.states["a"] == CustomerState("a") and got.marks == {0: 8}
    assert await any_store.restore(0, [record], 9, fresh=False) == 1


async def test_restore_ttl_is_what_is_left_since_the_record_was_written(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    now = time.time()
    far = now + 10 * STATE_TTL  # a follow-up due long after the state's TTL
    records = [
        ("recent", pack_stored(_with("recent"), 1), now - 600),
        ("expired", pack_stored(_with("expired"), 1), now - STATE_TTL - 5),
        ("waiting", pack_stored(_with("waiting", followups=[PendingFollowup("r", far, {})]), 1),
         now - STATE_TTL - 600),
        ("ahead", pack_stored(_with("ahead"), 1), now + 900),  # a writer's clock ahead
    ]
    await any_store.restore(5, records, 4, fresh=True)
    ttl = {c: any_admin.ttl(any_store.state_key(c, 5)) for c, *_ in records}
    assert STATE_TTL - 610 <= ttl["recent"] <= STATE_TTL - 600
    assert ttl["expired"] == -2  # gone: nothing of it left
    # as the original write: kept until STATE_TTL after the follow-up is due
    assert far - now + STATE_TTL - 10 <= ttl["waiting"] <= far - now + STATE_TTL
    assert STATE_TTL - 10 <= ttl["ahead"] <= STATE_TTL
    assert await any_store.due_customers(far, partition=5) == ["waiting"]


# -- keys -------------------------------------------------------------------------------
def test_a_partitions_keys_share_one_cluster_slot() -> None:
    store = RedisStateStore(Redis(), prefix="tact:", partitions=6)
    for customer in ("c-1", "émilie", "with:colons", "{braces}"):
        p = store.partition_of(customer)
        assert p == partition_of(customer, 6)
        names = [store.state_key(customer), store.quarantine_key(customer),
                 store.keys.due(p), store.keys.mark(p)]
        assert names[0] == f"tact:{{p{p}}}:s:{customer}"
        assert {key_slot(k.encode()) for k in names} == {key_slot(f"p{p}".encode())}
    slots = {key_slot(store.keys.mark(p).encode()) for p in range(6)}
    assert len(slots) == 6  # partitions spread over the cluster


def test_prefix_must_not_hold_hash_tags(redis_url: str) -> None:
    with pytest.raises(ValueError):
        RedisStateStore(Redis.from_url(redis_url), prefix="tact:{x}:")


# -- errors -----------------------------------------------------------------------------
async def test_unreachable_redis_is_a_state_store_error() -> None:
    settings = TactSettings(redis_url=SecretStr("redis://:hunter2@127.0.0.1:1/0"))
    store = RedisStateStore.from_settings(settings, retries=0, connect_timeout=0.5)
    try:
        for call in (lambda: store.read({"c-1": 0}, marks=[0]),
                     lambda: store.write({0: PartitionWrite({}, 1)}),
                     lambda: store.restore(0, [], 1, fresh=True),
                     lambda: store.pending_followups([0])):
            with pytest.raises(StateStoreError) as info:
                await call()
            assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
            assert "hunter2" not in str(info.value)
        assert not await store.ping()
        assert "hunter2" not in repr(store)
    finally:
        await store.close()


async def test_response_errors_are_state_store_errors_and_write_nothing(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    any_admin.hset(any_store.keys.mark(0), mapping={"not": "a mark"})
    with pytest.raises(StateStoreError) as info:
        await any_store.write({0: PartitionWrite({"c-1": encoded(_with("c-1"))}, 5)})
    assert isinstance(info.value.__cause__, redis.exceptions.ResponseError)
    assert any_admin.exists(any_store.state_key("c-1", 0)) == 0  # the check runs first


def test_settings_apply_tls_and_password() -> None:
    settings = TactSettings(
        redis_url=SecretStr("redis://127.0.0.1:6380/2"),
        redis_password=SecretStr("s3cret"),
        redis_tls=True,
    )
    store = RedisStateStore.from_settings(settings)
    client = store.client
    assert isinstance(client, Redis)
    kwargs = client.connection_pool.connection_kwargs
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6380, 2)
    assert kwargs["password"] == "s3cret"
    assert "s3cret" not in repr(store) and "s3cret" not in repr(settings)
    assert store.partitions == settings.events_partitions


def test_cluster_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TACT_REDIS_URL", "redis://127.0.0.1:7000")
    monkeypatch.setenv("TACT_REDIS_CLUSTER", "true")
    store = RedisStateStore.from_settings(TactSettings())
    assert isinstance(store.client, RedisCluster)


def test_hiredis_parses_replies() -> None:
    from redis.asyncio.connection import DefaultParser

    assert DefaultParser.__name__ == "_AsyncHiredisParser"


def test_the_stored_value_is_the_changelog_value() -> None:
    st = _full_state("c-9")
    assert unpack_stored(pack_stored(st, 7)) == st
