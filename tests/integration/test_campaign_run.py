"""A campaign run on real Kafka and Redis, its fan-out killed mid-run and resumed.

600 customers are seeded (the state changelog; the worker rebuilds Redis from it): gold ones
with push consent, gold ones without, gold ones whose promotional pushes for the day are
used up, and silver ones outside the audience. ``tact campaigns run weekend_gold`` (a
subprocess, at 150 customers/s) is SIGKILLed once its checkpoint shows it under way, then
started again: it resumes from the checkpoint. At the end, through the in-process worker:
exactly one decision per customer of the audience, with the id a rule's decision for the
run's event gets, each through the pack's policies (no consent, the frequency cap); none
for the silver ones; every event sent more than once (the page in flight at the kill) a
duplicate; the worker's metrics and dashboard show the run done; and `tact campaigns status`
says so too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis

from engine.campaigns.redis import RedisCheckpoints
from engine.campaigns.schedule import campaign_event_id, run_id
from engine.models.decision import Decision, decision_id
from engine.models.state import CustomerState, SentRecord
from engine.pack.loader import load_pack
from engine.services import manager
from engine.worker.runtime import StreamWorker, WorkerOptions
from tests.integration.kafka_utils import (
    REPO,
    WorkerNames,
    read_committed,
    seed_states,
    wait_committed,
)
from tests.integration.redis_utils import Target, delete_prefix

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N = 600
SCHEDULED = datetime.fromisoformat("2026-11-27T10:00:00+01:00").timestamp()
RUN = run_id("weekend_gold", SCHEDULED)


def _customer(i: int, now: float) -> tuple[CustomerState, str]:
    """A customer and what the run should decide for them."""
    cid = f"cust-{i:04d}"
    attrs = {"tz": "Europe/Rome", "tier": "gold"}
    if i % 5 == 0:
        return CustomerState(cid, attributes={**attrs, "tier": "silver"},
                             consent={"push": True}), "none"
    if i % 7 == 0:
        return CustomerState(cid, attributes=attrs), "no_consent"
    if i % 11 == 0:
        used = [SentRecord("flash_sale", "push", "promotion", now - 3600 * k) for k in (1, 2)]
        return CustomerState(cid, attributes=attrs, consent={"push": True},
                             history=used), "frequency_cap"
    return CustomerState(cid, attributes=attrs, consent={"push": True}), "sent"


def _pack_dir(tmp: Path) -> Path:
    """The project's pack, the campaign slowed to 150 customers/s (so it can be killed)."""
    pack = tmp / "rules"
    shutil.copytree(REPO / "rules", pack, ignore=shutil.ignore_patterns("scenarios"))
    text = (pack / "campaigns.yaml").read_text()
    (pack / "campaigns.yaml").write_text(text.replace("rate: 500/s", "rate: 150/s"))
    return pack


async def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                        or await _partitions(consumer, topic))]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # aiokafka has no public call for it
    return consumer.partitions_for_topic(topic) or set()


async def _until_stored(redis: Redis, prefix: str, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len([k async for k in redis.scan_iter(match=f"{prefix}*:s:*", count=1000)]) < n:
        assert time.monotonic() < deadline, "the worker did not rebuild the states in Redis"
        await asyncio.sleep(0.2)


async def test_a_killed_campaign_run_resumes_and_decides_each_customer_once(
        services: manager.Connection, redis_url: str, tmp_path: Path) -> None:
    now = time.time()
    people = [_customer(i, now) for i in range(N)]
    pack_dir = _pack_dir(tmp_path)
    pack = load_pack(pack_dir)
    names = WorkerNames.new("cmp", services.bootstrap_servers, redis_url)
    settings = names.settings(batch_max_latency_ms=0, rules_path=pack_dir)
    await seed_states(names, [st for st, _ in people], settings.events_partitions)
    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False,
                                        pack=pack))
    await worker.start()
    redis = Redis.from_url(redis_url)
    checkpoints = RedisCheckpoints(redis, names.prefix)
    env = names.env(TACT_RULES_PATH=str(pack_dir))
    command = [sys.executable, "-c", "from engine.cli import main; main()", "campaigns", "run",
               "weekend_gold", "--at", "2026-11-27T10:00:00+01:00"]
    try:
        # a tick on every partition: the worker owns them all, and rebuilt Redis first
        ticks = await worker.request_ticks(now)
        await wait_committed(names.bootstrap, names.group,
                             {TopicPartition(names.ticks, p): o + 1 for p, o in ticks.items()})
        await _until_stored(redis, names.prefix, N)
        first = await asyncio.create_subprocess_exec(*command, env=env, cwd=REPO)
        deadline = time.monotonic() + 60
        while True:  # under way: some pages checkpointed, far from done
            progress = await checkpoints.load(RUN)
            if progress is not None and progress.emitted >= 150:
                break
            assert first.returncode is None, "the fan-out ended before it could be killed"
            assert time.monotonic() < deadline, "the fan-out made no progress"
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        killed = await checkpoints.load(RUN)
        assert killed is not None and killed.finished is None and killed.emitted < N

        second = await asyncio.create_subprocess_exec(*command, env=env, cwd=REPO)
        assert await asyncio.wait_for(second.wait(), 60) == 0
        done = await checkpoints.load(RUN)
        assert done is not None and done.state == "done"

        ends = await _end_offsets(names.bootstrap, names.events)
        events = sum(ends.values())
        assert events >= N  # each customer at least once; the page in flight maybe twice
        await wait_committed(names.bootstrap, names.group, ends)
        got = [Decision.model_validate_json(r.value)
               for r in await read_committed(names.bootstrap, names.decisions)]
        assert worker.stats.duplicates == events - N
        assert worker.stats.dead_letters == {}

        per_customer = Counter(d.customer for d in got)
        assert set(per_customer.values()) == {1}, "one decision per customer per run"
        expected = {st.customer: want for st, want in people if want != "none"}
        assert {d.customer: ("sent" if d.outcome == "sent" else d.reasons[0]) for d in got} \
            == expected
        for d in got:
            assert (d.rule, d.message, d.channel) == ("weekend_gold", "weekend_getaway", "push")
            assert d.id == decision_id(campaign_event_id(RUN, d.customer), "weekend_gold", "push")

        await worker.refresh_telemetry()  # the worker's view: metrics and the dashboard
        shown = worker.telemetry.dashboard()["campaigns"][0]
        assert (shown["run"], shown["state"], shown["partitions_done"]) == (RUN, "done", 3)
        assert shown["sent"] == sum(want == "sent" for want in expected.values())
        metrics = worker.telemetry.render_metrics().decode()
        assert 'tact_campaign_running{campaign="weekend_gold"} 0.0' in metrics

        status = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from engine.cli import main; main()", "campaigns", "status",
            env=env, cwd=REPO, stdout=asyncio.subprocess.PIPE)
        out, _ = await status.communicate()
        assert f"{RUN}: done".encode() in out, out
    finally:
        await worker.stop()
        await redis.aclose()
        admin = Target(redis_url, cluster=False).admin()
        try:
            delete_prefix(admin, names.prefix)
        finally:
            admin.close()
