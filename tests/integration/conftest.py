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
from tests.integration.redis_utils import (
    DEFAULT_URL,
    Admin,
    Target,
    delete_prefix,
    open_store,
)


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


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """The local 3-master Redis Cluster (`tact services up --redis-cluster`), started if it
    does not answer. ``up`` is idempotent: the running Kafka and Redis are left alone."""
    settings = manager.ServicesSettings(redis_cluster=True)
    nodes = settings.redis_cluster_nodes()
    if not all(node.ok for node in nodes.states()):
        result = manager.up(settings, timeout=180.0)
        assert result.status.ok, f"the Redis Cluster is not answering after up: {result.status}"
    return nodes.url


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.redis_cluster)])
def target(request: pytest.FixtureRequest) -> Target:
    """The single server, then the Redis Cluster: a test taking this runs on both."""
    if request.param == "cluster":
        return Target(request.getfixturevalue("redis_cluster_url"), cluster=True)
    return Target(request.getfixturevalue("redis_url"), cluster=False)


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix of the test's own, its keys deleted after it (on ``target`` when the
    test runs on both, else on the single server)."""
    p = f"tact-test-{uuid.uuid4().hex}:"
    if "target" in request.fixturenames:
        admin: Admin = request.getfixturevalue("target").admin()
    else:
        admin = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield p
    try:
        delete_prefix(admin, p)
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


@pytest.fixture
def any_admin(target: Target) -> Iterator[Admin]:
    """A sync client on ``target`` (a ``RedisCluster`` there)."""
    client = target.admin()
    yield client
    client.close()


@pytest.fixture
async def any_store(target: Target, prefix: str) -> AsyncIterator[RedisStateStore]:
    """A store on ``target``, opened as the worker does (``from_settings``; cluster mode
    with ``TACT_REDIS_CLUSTER``)."""
    s = RedisStateStore.from_settings(target.settings(), prefix=prefix)
    yield s
    await s.close()
