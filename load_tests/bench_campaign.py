"""How long a campaign run takes over a million customers in Redis.

1. **Scan + emit**: ``--customers`` realistic customer states (those of bench_restore) are
   written into Redis db 13 under the worker's key layout (6 partitions); then the fan-out
   (``engine.campaigns``: SCAN per partition, one ``campaign`` event per customer, produced to
   a fresh events topic with acks from every replica, a checkpoint per page) runs unthrottled.
   The baseline, in the same run: a raw SCAN of the same keys with the same page size (the
   floor of any walk). Prints both, customers/s, and the ratio.
2. **End to end** (``--e2e`` customers, 0 to skip): the same states in a fresh state
   changelog, a worker (in process, real Kafka and Redis) serving the project's pack with the
   campaign's audience matching two segments in three, the fan-out, until the worker has
   committed every event: customers decided per second.

    PYTHONPATH=. .venv/bin/python -m load_tests.bench_campaign [--customers 1000000] [--e2e 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from redis.asyncio import Redis

from connectors.kafka.admin import TopicSpec, ensure_topics
from engine.campaigns.service import streaming_fanout
from engine.config import TactSettings
from engine.pack.loader import load_pack
from engine.state.redis.keys import Keys, partition_of
from engine.state.wire import pack_stored
from engine.worker.runtime import StreamWorker, WorkerOptions
from load_tests.bench_restore import PARTITIONS, _state, fill

REPO = Path(__file__).resolve().parents[1]
SCHEDULED = 1_795_770_000.0  # 2026-11-27T10:00+01:00
PAGE = 5000  # the fan-out's page (SCAN COUNT) at any rate of 20,000/s or more


async def seed_redis(redis: Redis, prefix: str, customers: int) -> None:
    keys, rng = Keys(prefix), random.Random(7)
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(customers):
            st = _state(i, rng)
            pipe.set(keys.state(st.customer, partition_of(st.customer, PARTITIONS)),
                     pack_stored(st, st.version))
            if i % 10_000 == 9_999:
                await pipe.execute()
        await pipe.execute()


async def raw_scan(redis: Redis, prefix: str) -> tuple[float, int]:
    keys, found = Keys(prefix), 0
    t0 = time.perf_counter()
    for p in range(PARTITIONS):
        cursor = 0
        while True:
            cursor, page = await redis.scan(cursor, match=keys.states_pattern(p), count=PAGE)
            found += len(page)
            if cursor == 0:
                break
    return time.perf_counter() - t0, found


def _pack_dir(tmp: Path) -> Path:
    pack = tmp / "rules"
    shutil.copytree(REPO / "rules", pack, ignore=shutil.ignore_patterns("scenarios"))
    text = (pack / "campaigns.yaml").read_text()
    text = text.replace('customer.attributes.tier == "gold"',
                        'customer.attributes.segment in ["regular", "fashion"]')
    (pack / "campaigns.yaml").write_text(text.replace("rate: 500/s", "rate: 1000000/s"))
    return pack


async def scan_and_emit(args: argparse.Namespace, pack_dir: Path) -> dict[str, float]:
    pack = load_pack(pack_dir)
    tag = uuid.uuid4().hex[:8]
    prefix = f"bench-campaign-{tag}:"
    settings = TactSettings(kafka_brokers=args.brokers, redis_url=args.redis_url,
                            events_topic=f"bench-campaign-{tag}.events",
                            events_partitions=PARTITIONS)
    await asyncio.to_thread(ensure_topics, settings,
                            {settings.events_topic: TopicSpec(PARTITIONS)})
    redis = Redis.from_url(args.redis_url)
    try:
        t0 = time.perf_counter()
        await seed_redis(redis, prefix, args.customers)
        print(f"redis: {args.customers} states written in {time.perf_counter() - t0:.1f} s")
        scan_s, found = await raw_scan(redis, prefix)
        print(f"raw SCAN: {found} keys in {scan_s:.2f} s")
        async with streaming_fanout(settings, prefix) as streaming:
            t1 = time.perf_counter()
            progress = await streaming.fanout.run(pack.campaigns["weekend_gold"], SCHEDULED)
            run_s = time.perf_counter() - t1
        print(f"fan-out: {progress.emitted} events in {run_s:.2f} s")
    finally:
        await _drop(redis, prefix)
        await redis.aclose()
    return {"scan_s": scan_s, "fanout_s": run_s, "emitted": progress.emitted}


async def _drop(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=10_000)]
    for start in range(0, len(keys), 10_000):
        await redis.unlink(*keys[start:start + 10_000])


async def _committed_past(consumer: Any, topic: str, ends: dict[int, int]) -> bool:
    for partition, offset in ends.items():
        position = await consumer.committed(TopicPartition(topic, partition))
        if position is None or position <= offset:
            return False
    return True


async def end_to_end(args: argparse.Namespace, pack_dir: Path) -> dict[str, float]:
    tag = uuid.uuid4().hex[:8]
    settings = TactSettings(
        kafka_brokers=args.brokers, redis_url=args.redis_url, rules_path=pack_dir,
        events_topic=f"bench-e2e-{tag}.events", decisions_topic=f"bench-e2e-{tag}.decisions",
        dead_letter_topic=f"bench-e2e-{tag}.dead", state_topic=f"bench-e2e-{tag}.state",
        consumer_group=f"bench-e2e-{tag}", events_partitions=PARTITIONS)
    prefix = f"bench-e2e-{tag}:"
    await fill(settings, args.e2e)
    pack = load_pack(pack_dir)
    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=f"bench-{tag}",
                                        redis_prefix=prefix, wall_clock_ticks=False, pack=pack))
    await worker.start()
    redis = Redis.from_url(args.redis_url)
    try:
        await worker.request_ticks(time.time())  # owns every partition: Redis is rebuilt
        while worker.stats.restored_states < args.e2e:
            await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        async with streaming_fanout(settings, prefix) as streaming:
            progress = await streaming.fanout.run(pack.campaigns["weekend_gold"], SCHEDULED)
            ends = dict(streaming.sink.offsets)
        emitted_s = time.perf_counter() - t0
        consumer = worker._consumer  # the bench reads the worker's committed position
        while not await _committed_past(consumer, settings.events_topic, ends):
            await asyncio.sleep(0.05)
        total_s = time.perf_counter() - t0
        decided = sum(worker.stats.decisions.values())
    finally:
        await worker.stop()
        await _drop(redis, prefix)
        await redis.aclose()
    print(f"end to end: {progress.emitted} customers decided in {total_s:.2f} s "
          f"(fan-out done at {emitted_s:.2f} s), {decided} decisions")
    return {"e2e_s": total_s, "e2e_emit_s": emitted_s, "e2e_customers": progress.emitted,
            "e2e_decisions": decided}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--e2e", type=int, default=50_000)
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pack_dir = _pack_dir(Path(tmp))
        out = await scan_and_emit(args, pack_dir)
        if args.e2e:
            out.update(await end_to_end(args, pack_dir))
    per_s = out["emitted"] / out["fanout_s"]
    result = {
        "customers": args.customers, "raw_scan_s": round(out["scan_s"], 2),
        "fanout_s": round(out["fanout_s"], 2), "fanout_customers_per_s": round(per_s),
        "fanout_seconds_per_million": round(out["fanout_s"] * 1e6 / args.customers, 1),
        "fanout_over_raw_scan": round(out["fanout_s"] / out["scan_s"], 1)}
    if args.e2e:
        result.update({
            "e2e_customers": out["e2e_customers"], "e2e_s": round(out["e2e_s"], 2),
            "e2e_customers_per_s": round(out["e2e_customers"] / out["e2e_s"]),
            "e2e_decisions": out["e2e_decisions"]})
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
