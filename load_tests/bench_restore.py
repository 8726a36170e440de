"""How long Redis takes to be rebuilt from the state changelog, per million customers.

Fills a fresh changelog topic (6 partitions, compacted) with ``--customers`` realistic
customer states (attributes, consent, counters, history, seen ids; some with a pending
follow-up), then times ``tact state restore`` (``engine.worker.runtime.rebuild``: every
partition deleted, then copied from the changelog with its mark) into Redis db 13. The
baseline, in the same run: reading the same topic with the same consumer and writing the
same bytes with plain pipelined SETs (no marks, no index, no decode): the floor of the
copy. Prints states/s, the time per million customers and the ratio to the floor; each
figure is the median of ``--repeat`` runs.

    PYTHONPATH=. .venv/bin/python -m load_tests.bench_restore [--customers 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from connectors.kafka.admin import TopicSpec, ensure_topics
from engine.config import TactSettings
from engine.models.state import CustomerState, PendingFollowup, SentRecord
from engine.state.redis.keys import partition_of
from engine.worker.changelog import state_record
from engine.worker.runtime import changelog, rebuild

PARTITIONS = 6


def _state(i: int, rng: random.Random) -> CustomerState:
    now = time.time()
    st = CustomerState(
        f"cust-{i:08d}", version=rng.randrange(1, 50),
        attributes={"segment": rng.choice(["fashion", "frequent_flyer", "regular"]),
                    "tz": "Europe/Rome", "points_expiring_days": rng.randrange(30)},
        consent={"push": True, "email": rng.random() < 0.7},
        counters={"purchases": float(rng.randrange(20))},
        timestamps={"last_purchase": now - rng.randrange(10**6)},
        history=[SentRecord("flash_sale", "push", "promotion", now - rng.randrange(10**5))
                 for _ in range(rng.randrange(4))],
        seen={f"ev-{i}-{k}": now - k for k in range(rng.randrange(1, 6))},
        last_event=now)
    if rng.random() < 0.1:
        st.followups = [PendingFollowup("cart_reminder", now + 1800,
                                        {"id": f"ev-{i}", "type": "cart_updated", "data": {}})]
    return st


async def fill(settings: TactSettings, customers: int) -> int:
    """The changelog topic with ``customers`` states; returns its size in bytes."""
    await asyncio.to_thread(ensure_topics, settings, {settings.state_topic: TopicSpec(
        PARTITIONS, config={"cleanup.policy": "compact"})})
    producer = AIOKafkaProducer(bootstrap_servers=settings.brokers(), acks=1, linger_ms=20,
                                max_batch_size=512 * 1024)
    await producer.start()
    rng, size = random.Random(7), 0
    try:
        pending = []
        for i in range(customers):
            key, value = state_record(_state(i, rng))
            size += len(value)
            pending.append(await producer.send(settings.state_topic, value, key=key,
                                               partition=partition_of(key.decode(),
                                                                      PARTITIONS)))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return size


async def floor(settings: TactSettings, redis: Redis) -> float:
    """Read every partition and SET the values as they are: seconds."""
    log = changelog(settings, "bench-restore-floor")  # the same reader as the restore
    t0 = time.perf_counter()
    try:
        for p in range(PARTITIONS):
            end = await log.end(p)
            async for chunk, _pos in log.read(p, 0, end):
                async with redis.pipeline(transaction=False) as pipe:
                    for customer, value, _at in chunk:
                        if value is not None:
                            pipe.set(f"floor:{customer}", value)
                    await pipe.execute()
    finally:
        await log.close()
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = ap.parse_args()
    settings = TactSettings(kafka_brokers=args.brokers, redis_url=args.redis_url,
                            state_topic=f"bench-restore-{uuid.uuid4().hex[:8]}.state")
    t0 = time.perf_counter()
    size = await fill(settings, args.customers)
    print(f"changelog: {args.customers} states, {size / 1e6:.1f} MB, filled in "
          f"{time.perf_counter() - t0:.1f} s")
    redis = Redis.from_url(args.redis_url)
    restores, floors = [], []
    try:
        for run in range(args.repeat):
            await redis.flushdb()
            floors.append(await floor(settings, redis))
            await redis.flushdb()
            t1 = time.perf_counter()
            done = await rebuild(settings, "bench:", None, lambda _line: None)
            restores.append(time.perf_counter() - t1)
            restored = sum(r.states for r in done)
            print(f"run {run + 1}: restore {restores[-1]:.2f} s ({restored} states), "
                  f"floor {floors[-1]:.2f} s")
    finally:
        await redis.flushdb()
        await redis.aclose()
    restore_s, floor_s = statistics.median(restores), statistics.median(floors)
    per_million = restore_s * 1_000_000 / args.customers
    print(json.dumps({
        "customers": args.customers, "changelog_mb": round(size / 1e6, 1),
        "restore_s_median": round(restore_s, 2), "floor_s_median": round(floor_s, 2),
        "states_per_s": round(args.customers / restore_s),
        "seconds_per_million_customers": round(per_million, 1),
        "restore_over_floor": round(restore_s / floor_s, 2)}))


if __name__ == "__main__":
    asyncio.run(main())
