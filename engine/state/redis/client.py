"""The redis-py client of the Redis state store: settings applied, errors translated.

A single server (``Redis``) or, with ``TACT_REDIS_CLUSTER=true``, a Redis Cluster
(``RedisCluster``, which finds the other nodes from the one in the URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException, RedisError

from engine.config import TactSettings
from engine.errors import StateStoreError

__all__ = ["AnyRedis", "client_from_settings", "redis_errors", "server_of", "text", "with_tls"]

AnyRedis = Redis | RedisCluster


def with_tls(url: str) -> str:
    """``redis://`` becomes ``rediss://``; other schemes are left alone."""
    parts = urlsplit(url)
    if parts.scheme == "redis":
        return urlunsplit(parts._replace(scheme="rediss"))
    return url


def client_from_settings(
    settings: TactSettings,
    *,
    socket_timeout: float = 5.0,
    connect_timeout: float = 2.0,
    retries: int = 2,
) -> AnyRedis:
    """A client on ``settings.redis_url`` (``redis_password`` and ``redis_tls`` applied).

    redis-py resends a request ``retries`` times on a connection error or timeout (short
    jittered backoff). The URL and password are never put in a message or a log.
    """
    url = settings.redis_url.get_secret_value()
    if settings.redis_tls:
        url = with_tls(url)
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    options: dict[str, Any] = {
        "password": password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries),
        "decode_responses": False,
    }
    try:
        if settings.redis_cluster:
            return RedisCluster.from_url(url, **options)
        return Redis.from_url(url, **options)
    except ValueError:
        # redis-py's message may quote the URL, which may carry a password.
        raise ValueError("TACT_REDIS_URL is not a valid Redis URL (not shown)") from None


def server_of(client: object) -> tuple[Any, ...] | None:
    """Where a redis-py client connects (host, port, socket path, db), or None if unknown."""
    pool = getattr(client, "connection_pool", None)
    kw = getattr(pool, "connection_kwargs", None)
    if not isinstance(kw, dict):
        return None
    return (kw.get("host"), kw.get("port"), kw.get("path"), int(kw.get("db") or 0))


def text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@contextmanager
def redis_errors(operation: str) -> Iterator[None]:
    """Translate redis-py errors (cluster and socket ones too) into :class:`StateStoreError`,
    cause chained.

    The message names the exception and redis-py's text (host:port at most, never the URL
    or a password).
    """
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:  # the 2nd is no RedisError
        raise StateStoreError(f"redis {operation} failed: {type(exc).__name__}: {exc}") from exc
