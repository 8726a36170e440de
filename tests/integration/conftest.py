"""Integration fixtures: the real Kafka and Redis from `tact services up`, started if needed."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from engine.services import manager
from engine.services import redis as redis_svc
from engine.state.redis import RedisStateStore
from tests.integration.redis_utils import DEFAULT_URL, open_store


@pytest.fixture(scope="session")
def services() -> Iterator[manager.Connection]:
    """Ensure the local services run (idempotent ``up``) and yield how to reach them.

    Never skips: if the services cannot start, ``up`` raises and every test using this fails
    with the reason (Maven, Java, ports, the broker's log tail).
    """
    result = manager.up(manager.ServicesSettings(), timeout=180.0)
    assert result.status.ok, f"services not answering after up: {result.status}"
    yield result.status.connection


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """The Redis to test against; waits for it, and starts the local services if needed."""
    url = os.environ.get("TACT_REDIS_URL", DEFAULT_URL)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if redis_svc.ping(url, timeout=0.5):
            return url
        time.sleep(0.25)
    if url == DEFAULT_URL:
        request.getfixturevalue("services")  # `tact services up`, idempotent
        if redis_svc.ping(url, timeout=2.0):
            return url
    pytest.fail(f"no Redis answering at {url}")


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    p = f"tact-test-{uuid.uuid4().hex}:"
    yield p
    admin = redis.Redis.from_url(redis_url)
    try:
        keys = list(admin.scan_iter(match=f"{p}*", count=1000))
        if keys:
            admin.delete(*keys)
    finally:
        admin.close()


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisStateStore]:
    s = await open_store(redis_url, prefix)
    yield s
    await s.close()
