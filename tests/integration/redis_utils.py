"""Helpers for the Redis store's integration tests: settings and opening a store."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from engine.config import TactSettings
from engine.state.redis import RedisStateStore

DEFAULT_URL = "redis://127.0.0.1:6379/0"
STATE_TTL = 3600
DEDUPE_TTL = 600


def store_settings(url: str, **kw: Any) -> TactSettings:
    return TactSettings(
        redis_url=SecretStr(url),
        state_ttl_seconds=STATE_TTL,
        dedupe_ttl_seconds=DEDUPE_TTL,
        **kw,
    )


async def open_store(redis_url: str, prefix: str) -> RedisStateStore:
    return RedisStateStore.from_settings(store_settings(redis_url), prefix=prefix)
