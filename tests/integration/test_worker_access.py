"""A real `tact run` with ``TACT_API_TOKEN=""``: every token-guarded endpoint answers 403
(disabled), even to ``Authorization: Bearer`` with nothing after it; the open /readyz shows
only its checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from engine.services import manager
from tests.integration.kafka_utils import WorkerNames, delete_prefix
from tests.integration.worker_proc import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def names(services: manager.Connection) -> Iterator[WorkerNames]:
    n = WorkerNames.new("access", services.bootstrap_servers, services.redis_url)
    yield n
    asyncio.run(delete_prefix(n.redis_url, n.prefix))


async def _call(method: str, url: str, auth: str, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s, \
            s.request(method, url, headers=headers,
                      data=None if body is None else orjson.dumps(body)) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_an_empty_token_disables_the_guarded_endpoints(
    names: WorkerNames, tmp_path: Path
) -> None:
    now = datetime.now(UTC).isoformat()
    event = {"id": "acc-1", "customer": "c-acc", "type": "app_open", "at": now}
    with WorkerProcess(names, tmp_path / "worker.log",
                       env={"TACT_API_TOKEN": "", "TACT_PROTECT_METRICS": "true"}) as w:
        ready = await w.wait_ready(timeout=30)
        for auth in ("Bearer", "Bearer ", "bearer  "):
            for method, path, body in [("POST", "/admin/reload", None),
                                       ("POST", "/events", event),
                                       ("GET", "/stats", None),
                                       ("GET", "/api/dashboard", None)]:
                status, reply = await _call(method, w.base + path, auth, body)
                assert status == 403, (path, auth, status, reply)
                assert "TACT_API_TOKEN" in reply["error"]
            status, _ = await _call("GET", w.base + "/readyz", auth)
            assert status == 200
        assert set(ready) == {"ready", "checks"}, ready  # no version, no error text
        assert ready["checks"] == {"kafka": True, "redis": True, "rules": True,
                                   "consumer": True}
        assert w.stop() == 0, w.log_tail()
