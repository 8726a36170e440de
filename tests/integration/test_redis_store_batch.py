"""The Redis store's batch calls against a real Redis: ``read_batch`` and ``save_batch`` (one
round trip each, the outbox carried along), the ``observe`` hook and ``pending_followups``.

Every test works under its own key prefix and deletes its keys (``conftest.py``).
"""

from __future__ import annotations

import pytest
import redis
from engine.worker.outbox import BatchIO, JointBatchIO, RedisOutbox, batch_io, unpack_entries
from redis.asyncio import Redis

from engine.errors import StateStoreError
from engine.models.state import CustomerState, PendingFollowup
from engine.state.base import BatchStore
from engine.state.redis import RedisStateConflictError, RedisStateStore, scripts
from tests.integration.redis_utils import STATE_TTL, open_store

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _recorder(store: RedisStateStore | RedisOutbox) -> list[tuple[str, float]]:
    calls: list[tuple[str, float]] = []
    store.observe = lambda op, seconds: calls.append((op, seconds))
    return calls


async def test_save_batch_writes_outbox_and_partitions_in_one_round_trip(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    states = await store.load(["c-1", "c-2", "c-3"])
    states["c-1"].followups = [PendingFollowup("r", 100.0, {})]
    states["c-3"].followups = [PendingFollowup("r", 1_795_447_767.475632, {})]
    out_key, gone_key = f"{store.prefix}outbox:e0", f"{store.prefix}outbox:e1"
    admin.set(gone_key, b"old")
    trips = store.round_trips
    await store.save_batch({0: {"c-1": states["c-1"], "c-2": states["c-2"]},
                            4: {"c-3": states["c-3"]}},
                           [(out_key, b"box"), (gone_key, None)])
    assert store.round_trips == trips + 1
    assert {c: st.version for c, st in states.items()} == {"c-1": 1, "c-2": 1, "c-3": 1}
    assert admin.get(out_key) == b"box" and admin.exists(gone_key) == 0
    assert admin.zrange(store.followups_key(0), 0, -1) == [b"c-1"]
    assert admin.zrange(store.followups_key(4), 0, -1) == [b"c-3"]
    assert admin.zscore(store.followups_key(4), "c-3") == 1_795_447_767.475632  # exact
    assert admin.get(store.state_key("c-2"))[:16] == b"0000000000000001"  # type: ignore[index]
    assert STATE_TTL - 10 <= admin.ttl(store.state_key("c-2")) <= STATE_TTL
    # nothing to save but the outbox: still one call
    await store.save_batch({}, [(out_key, b"box2")])
    assert admin.get(out_key) == b"box2" and store.round_trips == trips + 2
    await store.save_batch({})  # nothing at all: no call
    assert store.round_trips == trips + 2


async def test_save_batch_conflict_still_writes_the_outbox_and_the_others(
    store: RedisStateStore, redis_url: str, admin: redis.Redis
) -> None:
    other = await open_store(redis_url, store.prefix)
    try:
        mine = await store.load(["c-1", "c-2"])
        theirs = await other.load(["c-1"])
        theirs["c-1"].counters["x"] = 1
        await other.save(theirs)  # c-1 moved on since we loaded it
        key = f"{store.prefix}outbox:e0"
        with pytest.raises(RedisStateConflictError) as info:
            await store.save_batch({0: mine}, [(key, b"box")])
        assert info.value.customers == ("c-1",)
        assert (mine["c-1"].version, mine["c-2"].version) == (0, 1)
        assert admin.get(key) == b"box"  # the rerun finds c-2's decisions there
    finally:
        await other.close()


async def test_save_batch_checks_every_version_before_writing(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    admin.set(store.state_key("c-2"), b"zzzzzzzzzzzzzzzz\x90")
    key = f"{store.prefix}outbox:e0"
    with pytest.raises(StateStoreError, match="unreadable tact state header"):
        await store.save_batch({0: {"c-1": CustomerState("c-1"), "c-2": CustomerState("c-2")}},
                               [(key, b"box")])
    assert admin.exists(key, store.state_key("c-1")) == 0  # the script wrote nothing


async def test_read_batch_brings_states_keys_and_due_in_one_round_trip(
    store: RedisStateStore, admin: redis.Redis
) -> None:
    states = await store.load(["c-1", "c-2"])
    states["c-1"].followups = [PendingFollowup("r", 100.0, {})]
    states["c-2"].followups = [PendingFollowup("r", 200.0, {})]
    await store.save_batch({2: states})
    admin.set(f"{store.prefix}box", b"v")
    trips = store.round_trips
    got = await store.read_batch(["c-1", "c-9"], keys=[f"{store.prefix}box", "nope"],
                                 due=[(2, 150.0, 10), (2, 1e12, 1), (3, 1e12, 10), (2, 1e12, 0)])
    assert store.round_trips == trips + 1
    assert got.states["c-1"].followups == states["c-1"].followups
    assert got.states["c-9"] == CustomerState("c-9")
    assert got.values == [b"v", None]
    assert got.due == [["c-1"], ["c-1"], [], []]
    only_keys = await store.read_batch([], keys=[f"{store.prefix}box"])
    assert (only_keys.states, only_keys.values) == ({}, [b"v"])
    assert store.round_trips == trips + 2


async def test_observe_is_called_once_per_round_trip(
    store: RedisStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _recorder(store)
    states = await store.load(["c-1"])
    await store.save(states)
    await store.due_customers(1.0)
    await store.pending_followups([0, 1])
    await store.mark_seen(["ev-1"])
    await store.seen(["ev-1"])
    await store.read_batch(["c-1"], due=[(0, 1.0, 5)])
    monkeypatch.setattr(scripts, "SAVE_BATCH_SHA", "0" * 40)  # NOSCRIPT, then EVAL
    await store.save(states)
    ops = [op for op, _ in calls]
    assert ops == ["load", "save", "due", "pending", "mark_seen", "seen", "load", "save", "save"]
    assert len(ops) == store.round_trips
    assert all(0 <= s < 5 for _, s in calls)
    assert store.with_partition(3).observe is store.observe


async def test_observe_sees_failures_too() -> None:
    store = RedisStateStore(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    calls = _recorder(store)
    try:
        with pytest.raises(StateStoreError):
            await store.load(["c-1"])
        assert [op for op, _ in calls] == ["load"]
    finally:
        await store.close()


async def test_pending_followups_counts_each_partitions_index(store: RedisStateStore) -> None:
    s = await store.load(["a", "b", "c", "d"])
    for c in "abc":
        s[c].followups = [PendingFollowup("r", 50.0, {})]
    await store.save_batch({0: {"a": s["a"], "d": s["d"]}, 1: {"b": s["b"]}, 2: {"c": s["c"]}})
    trips = store.round_trips
    assert await store.pending_followups([0, 1]) == 2
    assert await store.pending_followups(iter([2, 2, 5])) == 1
    assert store.round_trips == trips + 2
    assert await store.pending_followups([]) == 0
    assert store.round_trips == trips + 2  # nothing asked: no call
    s["a"].followups = []
    await store.save({"a": s["a"]}, partition=0)
    assert await store.pending_followups(range(6)) == 2


async def test_outbox_observe_and_joint_io(store: RedisStateStore, redis_url: str) -> None:
    outbox = RedisOutbox(Redis.from_url(redis_url), f"{store.prefix}outbox:")
    calls = _recorder(outbox)
    try:
        await outbox.write({"e0": {5: {"c-1": [b"{}"]}}, "e1": {}})
        assert await outbox.load(["e0", "e1"]) == {"e0": {5: {"c-1": [b"{}"]}}, "e1": {}}
        assert await outbox.ping()
        assert [op for op, _ in calls] == ["outbox_write", "outbox_load", "ping"]

        assert isinstance(store, BatchStore)
        io = batch_io(store, outbox)
        assert isinstance(io, JointBatchIO)
        states, boxes, due = await io.read(["c-1"], ["e0"], [(0, 1.0)], 10)
        assert boxes == {"e0": {5: {"c-1": [b"{}"]}}} and due == [[]]
        await io.write({"e0": {6: {"c-1": [b"[]"]}}}, {0: states})
        assert unpack_entries(await outbox.client.get(outbox.key("e0"))) == {6: {"c-1": [b"[]"]}}
        assert states["c-1"].version == 1

        elsewhere = RedisOutbox(Redis.from_url(redis_url.rsplit("/", 1)[0] + "/9"), "x:")
        try:
            assert type(batch_io(store, elsewhere)) is BatchIO  # another db: separate calls
        finally:
            await elsewhere.close()
    finally:
        await outbox.close()
