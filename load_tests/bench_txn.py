"""Back-to-back Kafka transactions as the worker runs them, with aiokafka's 20 ms wait on
CONCURRENT_TRANSACTIONS against ``TACT_KAFKA_TXN_RETRY_MS`` (2 ms), alternating.

Each round: begin, one record batch per partition (``records`` in all, 400-byte values),
wait for the acknowledgements, send offsets, commit; the next round begins at once, as a
worker's next batch does. Milliseconds per step, medians, and the ratio of each retry wait
to the baseline (aiokafka's 20 ms), measured in the same run:

    python -m load_tests.bench_txn [--records 60,600,6000] [--rounds 30] [--retry-ms 20,2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid

from aiokafka import TopicPartition  # type: ignore[import-untyped,unused-ignore]

from connectors.kafka import clients
from connectors.kafka.admin import TopicSpec, ensure_topics

STEPS = ("send", "acks", "offsets", "commit", "total")


async def rounds(brokers: str, topic: str, records: int, count: int, retry_ms: int
                 ) -> dict[str, float]:
    settings = clients.plaintext(brokers).model_copy(update={"kafka_txn_retry_ms": retry_ms})
    producer = clients.aio_transactional_producer(
        settings, f"bench-txn-{uuid.uuid4().hex[:8]}", linger_ms=2, max_batch_size=256 * 1024)
    await producer.start()
    value = b"x" * 400
    per_step: dict[str, list[float]] = {s: [] for s in STEPS}
    try:
        for r in range(count + 3):  # three warm-up rounds
            t0 = time.perf_counter()
            await producer.begin_transaction()
            futures = []
            for partition in range(6):
                batch = producer.create_batch()
                for i in range(records // 6):
                    batch.append(key=b"c%d" % i, value=value, timestamp=None)
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            t1 = time.perf_counter()
            await asyncio.gather(*futures)
            t2 = time.perf_counter()
            await producer.send_offsets_to_transaction(
                {TopicPartition(topic, p): r + 1 for p in range(6)}, "bench-txn")
            t3 = time.perf_counter()
            await producer.commit_transaction()
            t4 = time.perf_counter()
            if r >= 3:
                for step, s in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
                                   strict=True):
                    per_step[step].append(s * 1000)
    finally:
        await producer.stop()
    return {s: round(statistics.median(v), 2) for s, v in per_step.items()}


async def amain(brokers: str, sizes: list[int], count: int, waits: list[int]) -> dict[str, object]:
    topic = f"bench.txn.{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(ensure_topics, clients.plaintext(brokers), {topic: TopicSpec(6)})
    out: dict[str, object] = {}
    for records in sizes:
        runs: dict[int, list[dict[str, float]]] = {w: [] for w in waits}
        for _ in range(2):  # alternate, twice
            for wait in waits:
                runs[wait].append(await rounds(brokers, topic, records, count, wait))
        medians = {w: {s: statistics.median(x[s] for x in rs) for s in STEPS}
                   for w, rs in runs.items()}
        base = medians[waits[0]]["total"]
        for wait, m in medians.items():
            print(f"{records:>6} records, retry {wait:>3} ms: "
                  + "  ".join(f"{s} {m[s]:6.2f}" for s in STEPS)
                  + f"  ms   ratio {m['total'] / base:.2f}")
        out[str(records)] = {str(w): m for w, m in medians.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_txn", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--records", default="60,600,6000", help="records per transaction")
    p.add_argument("--rounds", type=int, default=30, help="transactions per measurement")
    p.add_argument("--retry-ms", default="20,2", help="the first is the baseline")
    a = p.parse_args(argv)
    result = asyncio.run(amain(a.brokers, [int(x) for x in a.records.split(",")], a.rounds,
                               [int(x) for x in a.retry_ms.split(",")]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
