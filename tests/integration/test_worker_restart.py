"""Kill and restart: every event ends with its decisions or a dead letter, exactly once.

3,000 events over 300 customers are produced at a steady pace while the worker (a `tact run`
subprocess) is made to die four times, at the places the commit protocol must survive:

1. right after a batch's transaction committed, before its states reached Redis (fault
   injection): the restart must catch Redis up from the state changelog before it decides;
2. after a batch's records were acknowledged inside the open transaction, before the commit
   (fault injection): the restart fences and aborts that transaction;
3. and 4. SIGKILL at an arbitrary moment mid-stream.

Each restart uses the same worker id (transactional id, static group member). At the end the
decisions topic (read_committed) must hold exactly the decisions embedded mode makes for the
same events, each id once, byte-for-byte equal; every invalid event has one dead letter;
and every customer's state in Redis is the one embedded mode ends with.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from engine.models.state import CustomerState
from engine.services import manager
from engine.state.redis.store import RedisStateStore
from tests.integration.exactly_once import assert_decided_once_as_embedded
from tests.integration.kafka_utils import (
    REPO,
    WorkerNames,
    http,
    partition_of,
    partitions,
    read_committed,
    seed_states,
    wait_committed,
)
from tests.integration.redis_utils import Target, delete_prefix
from tests.integration.worker_proc import WorkerProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

N_EVENTS = 3000
N_CUSTOMERS = 300
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
TYPES = ["app_open", "product_viewed", "order_shipped", "support_ticket_opened",
         "support_ticket_closed", "nps_submitted", "price_dropped", "cart_updated", "purchase",
         "boarding_pass_scanned", "newsletter_opened", "payment_failed"]
DATA: dict[str, Any] = {
    "product_viewed": {"category": "shoes", "sku": "s-1"},
    "order_shipped": {"order": "O-1", "carrier": "UPS"},
    "support_ticket_opened": {"ticket": "T-1", "topic": "late"},
    "support_ticket_closed": {"ticket": "T-1"},
    "price_dropped": {"sku": "s-1", "new_price": 10},
    "cart_updated": {"items": 2, "value": 50},
    "purchase": {"order": "O-2", "value": 50},
    "boarding_pass_scanned": {"flight": "AZ1", "destination": "Rome"},
    "payment_failed": {"order": "O-3", "reason": "declined"},
}


def _customers() -> dict[str, CustomerState]:
    rng = random.Random(11)
    out = {}
    for i in range(N_CUSTOMERS):
        cid = f"c-{i}"
        out[cid] = CustomerState(
            cid,
            attributes={"segment": rng.choice(["frequent_flyer", "fashion", "bargain_hunter",
                                               "regular"]),
                        "tz": "Europe/Rome", "points_expiring_days": rng.randint(1, 30)},
            consent={"push": rng.random() < 0.7, "email": rng.random() < 0.7},
        )
    return out


def _events() -> list[tuple[bytes, bytes, str]]:
    """(key, value, received ISO) in production order; ~1% invalid, ~1% duplicates."""
    rng = random.Random(5)
    out: list[tuple[bytes, bytes, str]] = []
    for i in range(N_EVENTS):
        cid = f"c-{rng.randrange(N_CUSTOMERS)}"
        at = datetime.fromtimestamp(START + i * 7, UTC).isoformat()
        t = rng.choice(TYPES)
        data = dict(DATA.get(t, {}))
        if t == "nps_submitted":
            data = {"score": rng.randint(0, 10)}
        ev = {"id": f"ev-{i}", "customer": cid, "type": t, "at": at, "data": data}
        roll = rng.random()
        if roll < 0.01 and out:
            out.append(out[rng.randrange(len(out))])  # a producer retry: the same record again
        elif roll < 0.02:
            out.append((cid.encode(), b'{"id": "broken", ' + str(i).encode(), at))  # not JSON
        else:
            out.append((cid.encode(), orjson.dumps(ev), at))
    return out


def _worker(names: WorkerNames, log: Path, fault: str = "", cluster: bool = False
            ) -> WorkerProcess:
    """A worker with the test's settings; ``fault`` makes it exit (70) at that point."""
    extra = {"TACT_WORKER_FAULT": fault} if fault else {}
    if cluster:
        extra["TACT_REDIS_CLUSTER"] = "true"
    return WorkerProcess(
        names, log, env={"TACT_BATCH_MAX_LATENCY_MS": "0", **extra},
        args=["--no-wall-clock", "--rules", str(REPO / "rules"), "--log-level", "INFO"])


async def _wait_exit(w: WorkerProcess, timeout: float) -> int:
    async def exited() -> bool:
        return not w.running

    await until(exited, timeout, "the worker's exit at its injected fault", interval=0.05)
    return w.stop()


async def test_kill_and_restart_exactly_once(services: manager.Connection,
                                             tmp_path: Path, target: Target) -> None:
    names = WorkerNames.new("kill", services.bootstrap_servers, target.url)
    settings = names.settings(redis_cluster=target.cluster)
    customers = _customers()
    await seed_states(names, customers.values(), settings.events_partitions)
    events = _events()
    log = tmp_path / "worker.log"

    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=names.bootstrap, acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent: list[Any] = []

    last_started = asyncio.Event()

    async def produce_all() -> None:
        for i in range(0, len(events), 25):  # 4/5 of the events over ~11 s, a steady stream
            if i >= len(events) * 4 // 5:  # the rest once the last worker runs
                await last_started.wait()
            futs = [await producer.send(names.events, v, key=k,
                                        headers=[("tact-received", r.encode())])
                    for k, v, r in events[i:i + 25]]
            sent.extend(await asyncio.gather(*futs))
            await asyncio.sleep(0.1)

    exits: list[int] = []
    try:
        w = _worker(names, log, fault="after-commit:3", cluster=target.cluster)
        feeder = asyncio.create_task(produce_all())
        exits.append(await _wait_exit(w, 60))
        w = _worker(names, log, fault="after-produce:3", cluster=target.cluster)
        exits.append(await _wait_exit(w, 60))
        for delay in (1.2, 0.7):
            w = _worker(names, log, cluster=target.cluster)
            await asyncio.sleep(3.0 + delay)  # start-up, then some batches
            w.kill()
        w = _worker(names, log, cluster=target.cluster)
        last_started.set()
        await feeder
        await w.wait_ready(timeout=30)
        n = await partitions(names.bootstrap, names.events)
        ends = {TopicPartition(names.events, p): 0 for p in range(n)}
        for m in sent:
            tp = TopicPartition(m.topic, m.partition)
            ends[tp] = max(ends[tp], m.offset + 1)
        await wait_committed(names.bootstrap, names.group, ends, timeout=90)
        decisions = await read_committed(names.bootstrap, names.decisions)
        dead = await read_committed(names.bootstrap, names.dead_letter)
        status, ready = await http("GET", f"{w.base}/readyz")
        assert status == 200, ready
        assert w.stop(60) == 0
        store = RedisStateStore.from_settings(settings, prefix=names.prefix)
        try:
            stored = {}
            for p in range(settings.events_partitions):
                mine = [c for c in customers if partition_of(c, settings.events_partitions) == p]
                stored.update(await store.load(mine, p))
        finally:
            await store.close()
    finally:
        await producer.stop()
        print(f"worker log: {log}")
        admin = target.admin()
        try:
            delete_prefix(admin, names.prefix)
        finally:
            admin.close()
    assert exits == [70, 70], exits

    mem = await assert_decided_once_as_embedded(customers, events, sent, decisions, dead)
    # the first restart found Redis behind the changelog and caught it up first
    assert "caught up" in log.read_text(errors="replace"), "the catch-up was not exercised"
    # every customer's state survived: what embedded mode ends with (less the write count)
    final = await mem.load(list(customers))
    assert {c: [*st.to_wire()[:2], *st.to_wire()[3:]] for c, st in stored.items()} == \
        {c: [*st.to_wire()[:2], *st.to_wire()[3:]] for c, st in final.items()}
