"""Integration fixtures: the real Kafka and Redis from `tact services up`, started if needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.services import manager


@pytest.fixture(scope="session")
def services() -> Iterator[manager.Connection]:
    """Ensure the local services run (idempotent ``up``) and yield how to reach them.

    Never skips: if the services cannot start, ``up`` raises and every test using this fails
    with the reason (Maven, Java, ports, the broker's log tail).
    """
    result = manager.up(manager.ServicesSettings(), timeout=180.0)
    assert result.status.ok, f"services not answering after up: {result.status}"
    yield result.status.connection
