"""The Redis store's round trips against a real Redis: one per read (states, due follow-ups
and marks together) and one per write (every partition's script call) on a single server,
whatever the batch's size; the ``observe`` hook, called once per round trip.

Every test works under its own key prefix and deletes its keys (``conftest.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from engine.errors import StateStoreError
from engine.models.state import CustomerState, PendingFollowup
from engine.state.base import PartitionWrite
from engine.state.redis import RedisStateStore
from tests.integration.redis_utils import STATE_TTL, encoded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class CountingConnection(Connection):
    """A real connection that counts the requests it writes to the socket."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).writes += 1
        await super().send_packed_command(command, check_health)


def _cmdstat(admin: redis.Redis, name: str) -> int:
    entry = admin.info("commandstats").get(f"cmdstat_{name}")
    return int(entry["calls"]) if entry else 0


def _recorder(store: RedisStateStore) -> list[tuple[str, float]]:
    calls: list[tuple[str, float]] = []
    store.observe = lambda op, seconds: calls.append((op, seconds))
    return calls


async def test_one_round_trip_per_read_and_per_write_of_500_over_6_partitions(
    redis_url: str, prefix: str, admin: redis.Redis
) -> None:
    client = Redis.from_url(redis_url, connection_class=CountingConnection)
    store = RedisStateStore(client, prefix=prefix, partitions=6, state_ttl_seconds=STATE_TTL)
    try:
        await client.ping()  # connect (and its handshake) before counting
        customers = {f"c-{i}": i % 6 for i in range(500)}
        for p in range(6):
            await store.restore(p, [], 0, fresh=True)
        for round_no in (1, 2):  # the restores sent EVAL: the writes send EVALSHA
            writes, trips = CountingConnection.writes, store.round_trips
            evalsha = _cmdstat(admin, "evalsha")

            got = await store.read(customers, due=[(p, 1e12, 1000) for p in range(6)],
                                   marks=range(6))
            assert (store.round_trips, CountingConnection.writes) == (trips + 1, writes + 1)
            assert got.marks == dict.fromkeys(range(6), round_no - 1)
            assert sum(map(len, got.due)) == (0 if round_no == 1 else 500)
            by_part: dict[int, dict[str, tuple[CustomerState, bytes]]] = {}
            for c, st in got.states.items():
                st.counters["n"] = st.counters.get("n", 0) + 1
                st.followups = [PendingFollowup("r", 1000.0 + round_no, {})]
                by_part.setdefault(customers[c], {})[c] = encoded(st, round_no)
            refused = await store.write({p: PartitionWrite(rows, round_no)
                                         for p, rows in by_part.items()})
            assert refused == set()
            assert (store.round_trips, CountingConnection.writes) == (trips + 2, writes + 2)
            assert _cmdstat(admin, "evalsha") - evalsha >= 6  # one call per partition
        assert await store.pending_followups(range(6)) == 500
        again = await store.read(customers)
        assert {st.counters["n"] for st in again.states.values()} == {2}
    finally:
        await store.close()


async def test_read_brings_states_due_and_marks_in_one_round_trip(
    store: RedisStateStore,
) -> None:
    a = CustomerState("c-1", followups=[PendingFollowup("r", 100.0, {})])
    b = CustomerState("c-2", followups=[PendingFollowup("r", 200.0, {})])
    await store.restore(2, [], 7, fresh=True)
    await store.write({2: PartitionWrite({"c-1": encoded(a), "c-2": encoded(b)}, 8)})
    trips = store.round_trips
    got = await store.read({"c-1": 2, "c-9": 2}, marks=[2, 3],
                           due=[(2, 150.0, 10), (2, 1e12, 1), (3, 1e12, 10), (2, 1e12, 0)])
    assert store.round_trips == trips + 1
    assert got.states["c-1"].followups == a.followups
    assert got.states["c-9"] == CustomerState("c-9")
    assert got.due == [["c-1"], ["c-1"], [], []]
    assert got.marks == {2: 8, 3: None}
    only_marks = await store.read({}, marks=[2])
    assert (only_marks.states, only_marks.marks) == ({}, {2: 8})
    assert store.round_trips == trips + 2
    assert (await store.read({})).states == {}  # nothing asked: no call
    assert store.round_trips == trips + 2


async def test_observe_is_called_once_per_round_trip(store: RedisStateStore,
                                                     admin: redis.Redis) -> None:
    calls = _recorder(store)
    st = CustomerState("c-1")
    await store.restore(0, [], 1, fresh=True)  # "restore" twice: the wipe, then the script
    await store.read({"c-1": 0}, marks=[0])
    await store.write({0: PartitionWrite({"c-1": encoded(st)}, 2)})
    await store.due_customers(1.0)
    await store.pending_followups([0, 1])
    admin.script_flush()
    await store.write({0: PartitionWrite({"c-1": encoded(st)}, 3)})  # NOSCRIPT, then EVAL
    assert await store.ping()
    ops = [op for op, _ in calls]
    assert ops == ["restore", "restore", "load", "save", "load", "pending", "save", "save",
                   "ping"]
    assert len(ops) == store.round_trips
    assert all(0 <= s < 5 for _, s in calls)


async def test_observe_sees_failures_too() -> None:
    store = RedisStateStore(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    calls = _recorder(store)
    try:
        with pytest.raises(StateStoreError):
            await store.read({"c-1": 0})
        assert [op for op, _ in calls] == ["load"]
    finally:
        await store.close()
