"""The Redis state store (single server or Redis Cluster): :mod:`engine.state.redis.store`."""

from engine.state.redis.keys import Keys, partition_of
from engine.state.redis.store import DEFAULT_PREFIX, RedisStateStore

__all__ = ["DEFAULT_PREFIX", "Keys", "RedisStateStore", "partition_of"]
