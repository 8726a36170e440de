"""Follow-ups by the wall clock in a running `tact run`: the Faust timer fires a due follow-up,
an unless-event cancels one, and a pending follow-up survives a restart (it lives in Redis)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.models.state import CustomerState
from engine.services import manager
from tests.integration.kafka_utils import (
    REPO,
    CommittedReader,
    WorkerNames,
    after,
    delete_prefix,
    produce,
    seed_states,
    wait_committed,
)
from tests.integration.worker_proc import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELAY = 30 * 60  # the example pack's cart_reminder: 30m after cart_updated, unless purchase


def _ev(eid: str, customer: str, type_: str, at: float, data: dict[str, Any]) -> Any:
    iso = datetime.fromtimestamp(at, UTC).isoformat()
    ev = {"id": eid, "customer": customer, "type": type_, "at": iso, "data": data}
    return customer.encode(), orjson.dumps(ev), [("tact-received", iso.encode())]


def _start(names: WorkerNames, log: Path, port: int | None = None) -> WorkerProcess:
    return WorkerProcess(names, log, port=port, env={"TACT_FOLLOWUP_INTERVAL_S": "0.2"},
                         args=["--rules", str(REPO / "rules")])


async def _reminders(reader: CommittedReader, seen: list[dict[str, Any]], customer: str,
                     timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(d["customer"] == customer for d in seen):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reminder for {customer}; got {seen}")
        seen.extend(orjson.loads(r.value) for r in await reader.read_new())
        await asyncio.sleep(0.1)


async def test_followups_fire_by_wall_clock_and_survive_restart(
        services: manager.Connection, tmp_path: Path) -> None:
    names = WorkerNames.new("fu", services.bootstrap_servers, services.redis_url)
    settings = names.settings()
    await seed_states(names, [
        CustomerState(c, attributes={"segment": "regular", "tz": "Europe/Rome"},
                      consent={"email": True})
        for c in ("c-due", "c-later", "c-cancelled")], settings.events_partitions)
    log = tmp_path / "worker.log"
    w = _start(names, log)
    cart = {"items": 2, "value": 40.0}
    try:
        await w.wait_ready(timeout=30)
        now = time.time()
        meta = await produce(names.bootstrap, names.events, [
            _ev("e1", "c-due", "cart_updated", now - DELAY - 60, cart),  # due a minute ago
            _ev("e2", "c-later", "cart_updated", now - DELAY + 8, cart),  # due in 8 s
            _ev("e3", "c-cancelled", "cart_updated", now - DELAY + 2, cart),
            _ev("e4", "c-cancelled", "purchase", now - DELAY + 3, {"order": "O", "value": 40}),
        ])
        await wait_committed(names.bootstrap, names.group, after(meta))
        seen: list[dict[str, Any]] = []
        async with CommittedReader(names.bootstrap, names.decisions) as reader:
            await _reminders(reader, seen, "c-due", 10)  # the timer fired it
            # restart before c-later is due: its follow-up waits in Redis meanwhile
            assert time.time() < now + 7, "too slow to restart before c-later is due"
            assert w.stop() == 0, w.log_tail()
            w = _start(names, log, port=w.port)
            await w.wait_ready(timeout=30)
            await _reminders(reader, seen, "c-later", 20)
            await asyncio.sleep(1.0)  # c-cancelled's time passes too
            seen.extend(orjson.loads(r.value) for r in await reader.read_new())
        assert w.stop() == 0, w.log_tail()
    finally:
        w.stop()
        await delete_prefix(names.redis_url, names.prefix)
    reminders = [d for d in seen if d["rule"] == "cart_reminder"]
    assert Counter(d["customer"] for d in reminders) == {"c-due": 1, "c-later": 1}
    assert all(d["outcome"] == "sent" and d["channel"] == "email" for d in reminders)
    assert len({d["id"] for d in seen}) == len(seen)
