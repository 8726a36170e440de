"""The Grafana dashboard against a real worker: every metric its PromQL queries is in the
``/metrics`` of a running `tact run` that has processed some traffic (the unit test
``tests/unit/test_grafana.py`` checks the same against ``Metrics`` alone)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from engine.services import manager
from load_tests.generator import generate_events, kafka_key
from tests.integration.kafka_utils import (
    REPO,
    WorkerNames,
    after,
    delete_prefix,
    produce,
    wait_committed,
)
from tests.integration.worker_proc import WorkerProcess
from tests.unit.test_grafana import (
    check_against,
    declared,
    exposed,
    load_dashboard,
    metric_names,
    queries,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

# Series that exist only once something happened that ordinary traffic does not cause
# (a rule raising; a goal converted: the example pack has no goals); for those, the family
# must be declared and that is all.
RARE = {"tact_rule_faults_total", "tact_goal_value_total"}


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, \
            s.get(url) as resp:
        return resp.status, await resp.text()


async def test_every_dashboard_metric_is_served_by_a_running_worker(
        services: manager.Connection, tmp_path: Path) -> None:
    names = WorkerNames.new("grafana", services.bootstrap_servers, services.redis_url)
    w = WorkerProcess(names, tmp_path / "worker.log", env={"TACT_TELEMETRY_INTERVAL_S": "0.5"},
                      args=["--rules", str(REPO / "rules")])
    base = w.base
    try:
        await w.wait_ready()

        status, _ = await _get(f"{base}/metrics")
        assert status == 200, f"GET /metrics answered {status}"

        # traffic: a realistic mix with some invalid events (dead letters) and a re-sent
        # batch (duplicates), so that the labelled series exist
        events = list(generate_events(400, customers=50, seed=3, start_time=time.time() - 60,
                                      step=0.1, invalid_ratio=0.05, id_prefix="graf-"))
        records = [(kafka_key(ev), orjson.dumps(ev), None) for ev in events]
        meta = await produce(names.bootstrap, names.events, records + records[:50])
        await wait_committed(names.bootstrap, names.group, after(meta))

        wanted = metric_names(queries(load_dashboard()))
        deadline = time.monotonic() + 20
        while True:  # the gauges (lag, pack, follow-ups) come with the telemetry timer
            status, text = await _get(f"{base}/metrics")
            assert status == 200
            missing = wanted - RARE - set(exposed(text))
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert not missing, f"no samples for {sorted(missing)} in /metrics:\n{text}"
        assert not wanted - declared(text), sorted(wanted - declared(text))
        problems = [p for p in check_against(exposed(text), load_dashboard())
                    if not any(r in p for r in RARE)]
        assert problems == []

        assert w.stop() == 0, w.log_tail()
    finally:
        w.stop()
        await delete_prefix(names.redis_url, names.prefix)
