"""Helpers for the Redis store's integration tests: settings, opening a store, and the
admin clients that look at (or break) what the store wrote, on a server or a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from pydantic import SecretStr

from engine.config import TactSettings
from engine.models.state import CustomerState
from engine.state.base import PartitionWrite
from engine.state.redis import RedisStateStore
from engine.state.wire import pack_stored

DEFAULT_URL = "redis://127.0.0.1:6379/0"
STATE_TTL = 3600

#: A sync client of either kind (tests read and write keys behind the store's back).
Admin = redis.Redis | redis.RedisCluster


@dataclass(frozen=True, slots=True)
class Target:
    """Where a store test runs: the single server or the Redis Cluster."""

    url: str
    cluster: bool

    def settings(self, **kw: Any) -> TactSettings:
        return store_settings(self.url, redis_cluster=self.cluster, **kw)

    def admin(self) -> Admin:
        if self.cluster:
            return redis.RedisCluster.from_url(self.url)
        return redis.Redis.from_url(self.url)


def store_settings(url: str, **kw: Any) -> TactSettings:
    return TactSettings(redis_url=SecretStr(url), state_ttl_seconds=STATE_TTL, **kw)


async def open_store(redis_url: str, prefix: str, *, cluster: bool = False,
                     **kw: Any) -> RedisStateStore:
    settings = store_settings(redis_url, redis_cluster=cluster, **kw)
    return RedisStateStore.from_settings(settings, prefix=prefix)


def delete_prefix(admin: Admin, prefix: str) -> None:
    """Delete every key under ``prefix`` (on a cluster: SCAN each primary, DEL per key)."""
    if isinstance(admin, redis.RedisCluster):
        keys = list(admin.scan_iter(match=f"{prefix}*", count=1000,
                                    target_nodes=redis.RedisCluster.PRIMARIES))
        for key in keys:  # one slot per DEL: any key of a partition may sit elsewhere
            admin.delete(key)
        return
    keys = list(admin.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        admin.delete(*keys)


def flush_scripts(admin: Admin) -> None:
    """SCRIPT FLUSH (on a cluster, redis-py sends it to every primary): what a restart does
    to the script cache."""
    admin.script_flush()


def encoded(state: CustomerState, version: int | None = None) -> tuple[CustomerState, bytes]:
    """A state and its stored value, as the worker hands them to ``write``."""
    return state, pack_stored(state, state.version if version is None else version)


async def seed(store: RedisStateStore, states: dict[str, CustomerState],
               partition: int | None = None) -> None:
    """Write states without a mark (no changelog), each in its partition (or ``partition``)."""
    by_part: dict[int, dict[str, tuple[CustomerState, bytes]]] = {}
    for c, st in states.items():
        p = store.partition_of(c) if partition is None else partition
        by_part.setdefault(p, {})[c] = encoded(st)
    refused = await store.write({p: PartitionWrite(rows) for p, rows in by_part.items()})
    if refused:
        raise AssertionError(f"seeding refused for partitions {sorted(refused)}")
