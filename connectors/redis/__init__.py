"""Redis connector: the production state store (see :mod:`connectors.redis.store`)."""

from connectors.redis.store import (
    DEFAULT_PREFIX,
    RedisStateConflictError,
    RedisStateStore,
    decode_state,
    encode_state,
    pack_stored,
    unpack_stored,
)

__all__ = [
    "DEFAULT_PREFIX",
    "RedisStateConflictError",
    "RedisStateStore",
    "decode_state",
    "encode_state",
    "pack_stored",
    "unpack_stored",
]
