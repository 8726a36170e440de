"""``tact run --processes 2``: two workers in one group under one supervisor, exactly once.

3,000 events (with invalid ones and producer retries) over 300 customers on 3 partitions.
The first half is consumed by both children (each owns partitions) and the host's one
``/metrics`` shows exactly the events of both; then one child is SIGKILLed mid-stream of
the second half: the supervisor restarts it under the same worker id, and at the end the
committed decisions (read_committed) equal embedded mode's byte for byte, no id twice, and
every invalid event has exactly one dead letter.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from engine.models.event import parse_event
from engine.services import manager
from tests.integration.exactly_once import assert_decided_once_as_embedded
from tests.integration.kafka_utils import (
    REPO,
    WorkerNames,
    after,
    delete_prefix,
    http,
    read_committed,
    seed_states,
    wait_committed,
)
from tests.integration.test_worker_restart import _customers, _events
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "procs-test-token"


async def _metrics_text(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def _events_in(text: str) -> float:
    """The sum of ``tact_events_in_total`` over its types."""
    return sum(s.value for f in text_string_to_metric_families(text) if f.name == "tact_events_in"
               for s in f.samples if s.name == "tact_events_in_total")


def _restarts(text: str) -> float:
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "tact_worker_restarts"
               for s in f.samples if s.name == "tact_worker_restarts_total")


def _valid(records: list[tuple[bytes, bytes, str]]) -> int:
    n = 0
    for _, value, _ in records:
        try:
            parse_event(value)
        except Exception:
            continue
        n += 1
    return n


async def _workers(host: WorkerProcess) -> tuple[bool, dict[str, Any]]:
    """Whether the host is ready (every child), and each child's detailed readiness."""
    status, body = await http("GET", f"{host.base}/readyz", token=TOKEN)
    return status == 200, dict(body["workers"])


async def test_two_processes_exactly_once_through_a_child_kill(
        services: manager.Connection, redis_url: str, tmp_path: Path) -> None:
    names = WorkerNames.new("procs", services.bootstrap_servers, redis_url)
    customers = _customers()
    await seed_states(names, customers.values(), 3)
    events = _events()
    half = len(events) // 2
    log = tmp_path / "host.log"
    producer = AIOKafkaProducer(bootstrap_servers=names.bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent: list[Any] = []

    async def produce(chunk: list[tuple[bytes, bytes, str]], pause: float) -> None:
        for i in range(0, len(chunk), 25):
            futs = [await producer.send(names.events, v, key=k,
                                        headers=[("tact-received", r.encode())])
                    for k, v, r in chunk[i:i + 25]]
            sent.extend(await asyncio.gather(*futs))
            await asyncio.sleep(pause)

    host = WorkerProcess(
        names, log, env={"TACT_BATCH_MAX_LATENCY_MS": "0", "TACT_API_TOKEN": TOKEN},
        args=["--no-wall-clock", "--rules", str(REPO / "rules"), "--processes", "2"])
    try:
        with host:
            await host.wait_ready(timeout=90)
            _, children = await _workers(host)
            assert sorted(children) == ["worker-0", "worker-1"]
            ids = {c["process"]["worker_id"] for c in children.values()}
            assert ids == {f"{names.worker_id}-0", f"{names.worker_id}-1"}

            # phase 1: both children consume; the host's /metrics is the sum of theirs
            await produce(events[:half], 0.02)
            await wait_committed(names.bootstrap, names.group, after(sent), timeout=90)
            host_text = await _metrics_text(host.base)
            per_child = [_events_in(await _metrics_text(
                f"http://127.0.0.1:{c['process']['port']}")) for c in children.values()]
            assert all(n > 0 for n in per_child), per_child  # both own partitions
            assert _events_in(host_text) == sum(per_child) == _valid(events[:half])
            assert _restarts(host_text) == 0

            # phase 2: SIGKILL one child mid-stream; the supervisor restarts it
            feeder = asyncio.create_task(produce(events[half:], 0.1))
            await asyncio.sleep(2.0)
            victim = children["worker-0"]["process"]
            os.kill(victim["pid"], signal.SIGKILL)

            async def restarted() -> dict[str, Any] | None:
                ready, now = await _workers(host)
                p = now["worker-0"]["process"]
                return now if ready and p["restarts"] == 1 and p["pid"] != victim["pid"] \
                    else None

            try:
                await until(restarted, 60, "the killed child restarted and ready",
                            interval=0.3)
            finally:
                await feeder
            await wait_committed(names.bootstrap, names.group, after(sent), timeout=120)
            decisions = await read_committed(names.bootstrap, names.decisions)
            dead = await read_committed(names.bootstrap, names.dead_letter)
            host_text = await _metrics_text(host.base)
            assert _restarts(host_text) == 1
            # the dead child's counts stay in the sum (its files outlive it); a batch it
            # committed but had not yet counted is the most that can be missing
            assert _valid(events[:half]) < _events_in(host_text) <= _valid(events)
            status, health = await http("GET", f"{host.base}/healthz")
            assert status == 200 and all(health["workers"].values()), health
            assert host.stop(90) == 0
    finally:
        await producer.stop()
        await delete_prefix(names.redis_url, names.prefix)
        print(f"host log: {log}")

    await assert_decided_once_as_embedded(customers, events, sent, decisions, dead)
