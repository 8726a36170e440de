"""Baseline (a): raw aiokafka passthrough, the floor. Consume and produce, no logic.

Every consumed record is sent as is (same key and value) to the output topic. Nothing waits
in the loop: sends are acknowledged in the background (checked every 50,000 records and at
the end), offsets are auto-committed every second; no transactions, no delivery guarantee
beyond that. What any Python consumer-producer pays before doing any work::

    python -m load_tests.baselines.passthrough --input lt.events --output lt.a.out \\
        --group lt-a-1 [--brokers 127.0.0.1:9092] [--max-seconds 600]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import Any


async def run(brokers: str, source: str, output: str, group: str, max_seconds: float,
              max_records: int = 5000) -> int:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=brokers, group_id=group, auto_offset_reset="earliest",
        enable_auto_commit=True, auto_commit_interval_ms=1000,
        max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024,
        fetch_max_wait_ms=5, client_id=f"{group}-consumer",
    )
    producer = AIOKafkaProducer(bootstrap_servers=brokers, acks=1, linger_ms=1,
                                max_batch_size=512 * 1024, client_id=f"{group}-producer")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await producer.start()
    await consumer.start()
    print(f"passthrough: {source} -> {output} (group {group})", file=sys.stderr, flush=True)
    copied = 0
    futures: list[asyncio.Future[Any]] = []
    deadline = time.monotonic() + max_seconds
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
            for records in batch.values():
                for r in records:
                    futures.append(await producer.send(output, r.value, key=r.key))
            if len(futures) >= 50_000:
                await asyncio.gather(*futures)
                copied += len(futures)
                futures.clear()
        await asyncio.gather(*futures)
        copied += len(futures)
    finally:
        await consumer.stop()
        await producer.stop()
    print(f"passthrough: copied {copied} records", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.baselines.passthrough")
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--max-seconds", type=float, default=600.0)
    a = p.parse_args(argv)
    return asyncio.run(run(a.brokers, a.input, a.output, a.group, a.max_seconds))


if __name__ == "__main__":
    raise SystemExit(main())
