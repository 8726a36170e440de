"""Every scenario of the project (rules/scenarios) and, where they are beside the repository,
every shared acceptance scenario, end to end through Kafka and Redis (a single server, then
the local Redis Cluster), against embedded mode; the retail example pack's scenarios
(examples/retail/scenarios) too, with the worker serving that pack, on the single server.

Per scenario: a worker (in-process, real Kafka and Redis, own topics, group and key prefix),
the customers' starting states seeded in the state changelog (the worker rebuilds Redis from
it). Per step, as the embedded runner does: the clock moves to the step's time first (a tick
record on every partition: due follow-ups fire), then the step's event is produced with a
``tact-received`` header (its ``received``, default ``at``), or the step's campaign run is
fanned out over the worker's Redis into its events topic. Each stage waits until the
group committed past it; the step's decisions are what the decisions topic committed
meanwhile (read_committed). They must pass ``check_step`` and carry the same decision ids,
outcomes and reasons as the embedded run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from engine.campaigns.service import pick_run, streaming_fanout
from engine.config import TactSettings
from engine.models.decision import Decision
from engine.pack.loader import load_pack
from engine.pack.model import RulePack
from engine.scenarios import check_step, load_scenario, run_scenario
from engine.services import manager
from engine.worker.runtime import StreamWorker, WorkerOptions
from tests.conftest import NO_SHARED, RETAIL, RULES, SCENARIOS, SHARED_SCENARIOS, scenario_files
from tests.integration.kafka_utils import (
    CommittedReader,
    WorkerNames,
    after,
    produce,
    seed_states,
    wait_committed,
)
from tests.integration.redis_utils import Target, delete_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

FILES = scenario_files(SCENARIOS)
SHARED = [pytest.param(f, id=f"shared-{f.stem}") for f in scenario_files(SHARED_SCENARIOS)]
PACK = load_pack(RULES)
RETAIL_FILES = scenario_files(RETAIL / "scenarios")
RETAIL_PACK = load_pack(RETAIL)


def _key(d: Decision) -> tuple[Any, ...]:
    return (d.id, d.customer, d.message, d.channel, d.outcome, tuple(sorted(d.reasons)),
            d.deliver_after.timestamp() if d.deliver_after else None)


def test_scenarios_found() -> None:
    assert len(FILES) >= 12, f"expected the project's scenarios in {SCENARIOS}"
    assert len(RETAIL_FILES) >= 8, f"expected the retail pack's scenarios in {RETAIL}"


@pytest.mark.parametrize("path", [
    *[pytest.param(f, id=f.stem) for f in FILES],
    *(SHARED or [pytest.param(None, id="shared", marks=pytest.mark.skip(reason=NO_SHARED))]),
])
async def test_scenario_through_kafka(services: manager.Connection, path: Path,
                                      target: Target) -> None:
    await _through_worker(services, PACK, path, target)


@pytest.mark.parametrize("path", [pytest.param(f, id=f"retail-{f.stem}") for f in RETAIL_FILES])
async def test_retail_scenario_through_kafka(services: manager.Connection, path: Path,
                                             redis_url: str) -> None:
    # The single server only: the cluster adds no pack-specific path, only time.
    await _through_worker(services, RETAIL_PACK, path, Target(redis_url, cluster=False))


async def _campaign_run(settings: TactSettings, names: WorkerNames, pack: RulePack,
                        campaign: str, at: float) -> None:
    """The campaign's run at ``at``: the fan-out over the worker's Redis into its events
    topic (events dated ``at``); returns once the worker committed past them."""
    found, scheduled = pick_run(pack, campaign, at, at)
    async with streaming_fanout(settings, names.prefix, clock=lambda: at) as streaming:
        await streaming.fanout.run(found, scheduled)
        offsets = streaming.sink.offsets
    if offsets:
        await wait_committed(names.bootstrap, names.group,
                             {TopicPartition(names.events, p): o + 1 for p, o in offsets.items()})


async def _through_worker(services: manager.Connection, pack: RulePack, path: Path,
                          target: Target) -> None:
    """Run one scenario through a worker serving ``pack``; the same checks and decisions
    as the embedded run of it."""
    sc = load_scenario(path)
    embedded = await run_scenario(pack, sc)
    names = WorkerNames.new("sc", services.bootstrap_servers, target.url)
    settings = names.settings(batch_max_latency_ms=0, redis_cluster=target.cluster)
    await seed_states(names, sc.states(pack), settings.events_partitions)

    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False,
                                        pack=pack))
    await worker.start()
    problems: list[str] = []
    try:
        async with CommittedReader(names.bootstrap, names.decisions) as reader:
            for step, want in zip(sc.steps, embedded.steps, strict=True):
                ticks = await worker.request_ticks(step.at.timestamp())
                await wait_committed(names.bootstrap, names.group,
                                     {TopicPartition(names.ticks, p): o + 1
                                      for p, o in ticks.items()})
                dup_before = worker.stats.duplicates
                if step.event is not None:
                    raw = {**step.event, "at": step.at.isoformat()}
                    received = (step.received or step.at).isoformat()
                    meta = await produce(names.bootstrap, names.events, [(
                        raw["customer"].encode(), orjson.dumps(raw),
                        [("tact-received", received.encode())])])
                    await wait_committed(names.bootstrap, names.group, after(meta))
                elif step.campaign is not None:
                    await _campaign_run(settings, names, pack, step.campaign,
                                        step.at.timestamp())
                got = [Decision.model_validate_json(r.value) for r in await reader.read_new()]
                duplicate = worker.stats.duplicates > dup_before
                expect = sc.expect.get(step.id)
                if expect is not None:
                    problems += [f"{step.id}: {p}" for p in check_step(expect, got, duplicate)]
                if sorted(map(_key, got)) != sorted(map(_key, want.decisions)):
                    problems.append(f"{step.id}: worker decided {sorted(map(_key, got))}, "
                                    f"embedded {sorted(map(_key, want.decisions))}")
                assert all(d.rules_version == pack.version for d in got)
        assert worker.stats.dead_letters == {}
        assert worker.batch is not None and worker.batch.healthy
    finally:
        await worker.stop()
        admin = target.admin()
        try:
            delete_prefix(admin, names.prefix)
        finally:
            admin.close()
    assert not problems, "\n".join(problems)
