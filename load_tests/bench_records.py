"""Kafka records per event (issue 13): the worker's output in three layouts, produced to the
local broker as the worker produces it, CPU of the producer and of the broker per event.

The output is the real one: the load-test pack's decisions, dead letters and changelog
records for the generator's events (``bench_io``'s in-process batch path, memory store).
Each layout (``bench_io --layout``: ``per-decision`` today; ``per-event``, one record per
event with all its decisions as a JSON array; ``split``, suppressed decisions in a topic of
their own) is then produced batch by batch as the worker produces it, in one
transaction per batch (begin, ``send_batches``, await the acks, commit), onto fresh topics. Layouts
run alternately, ``--repeat`` times each; medians. CPU is user + system time: this
process's (``getrusage``) and the broker's (``/proc/<pid>/stat``, the pid from
``--broker-pid`` or the ``kafka.Kafka`` process)::

    PYTHONPATH=$PWD python -m load_tests.bench_records             # ~2 min

The broker is shared with everything else on the machine: read the broker column as the
order of magnitude, and compare the layouts within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from engine.services.manager import ensure_topics
from engine.worker.process import OutRecord
from load_tests.baselines import stat_cpu_ticks
from load_tests.bench_io import LAYOUTS, PARTITIONS, Bench, _records, _relayout
from load_tests.measure import delete_topics

try:
    from engine.worker.produce import KeyPartitions, send_batches
except ImportError:  # a tree before engine/worker/produce.py: the per-batch murmur2 cache
    from engine.worker.batch import _send_batches  # type: ignore[attr-defined]

    KeyPartitions = None  # type: ignore[assignment,misc]

    async def send_batches(producer: Any, records: list[OutRecord],  # type: ignore[misc]
                           key_partitions: Any = None) -> list[tuple[Any, str, int]]:
        sent: list[tuple[Any, str, int]] = await _send_batches(producer, records)
        return sent


def _broker_pid() -> int | None:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"kafka.Kafka" in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:
            continue
    return None


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    return stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text())[1] / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _outputs(events: int, batch: int) -> list[list[OutRecord]]:
    """Each batch's output records, today's layout (the decisions topic is ``decisions``)."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    bench = Bench(batch, "per-decision")
    batches: list[list[OutRecord]] = []
    original = bench.processor.process

    async def keep(pack: Any, ins: Any) -> Any:
        processed = await original(pack, ins)
        batches.append(processed.records)
        return processed

    bench.processor.process = keep  # type: ignore[method-assign,assignment]
    await bench.run(_records(events, 100_000, 42),
                    AIOKafkaProducer(bootstrap_servers="127.0.0.1:1"))
    return batches


async def _produce(bootstrap: str, batches: list[list[OutRecord]], names: dict[str, str],
                   broker: int | None) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                transactional_id=f"bench-records-{uuid.uuid4().hex[:8]}",
                                enable_idempotence=True, linger_ms=0,
                                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        renamed = [[OutRecord(names[r.topic], r.key, r.value, r.headers, r.partition)
                    for r in rs] for rs in batches]
        key_partitions = KeyPartitions() if KeyPartitions is not None else None  # as a worker
        own, kafka, t0 = _own_cpu(), _cpu_of(broker), time.perf_counter()
        for records in renamed:
            await producer.begin_transaction()
            sent = await send_batches(producer, records, key_partitions)
            await asyncio.gather(*(f for f, _t, _n in sent))
            await producer.commit_transaction()
        return {"wall": time.perf_counter() - t0, "producer_cpu": _own_cpu() - own,
                "broker_cpu": _cpu_of(broker) - kafka}
    finally:
        await producer.stop()


async def _main(a: argparse.Namespace) -> dict[str, Any]:
    broker = a.broker_pid or _broker_pid()
    base = await _outputs(a.events, a.batch)
    events = a.events
    tag = uuid.uuid4().hex[:8]
    topics = {t: f"bench-records-{tag}-{t}" for t in ("decisions", "suppressed", "dead", "state")}
    await asyncio.to_thread(ensure_topics, a.bootstrap, dict.fromkeys(topics.values(),
                                                                       PARTITIONS))
    results: dict[str, list[dict[str, float]]] = {layout: [] for layout in LAYOUTS}
    counts: dict[str, float] = {}
    try:
        for _ in range(a.repeat):
            for layout in LAYOUTS:
                batches = [_relayout(rs, layout, "decisions") for rs in base]
                counts[layout] = sum(map(len, batches)) / events
                results[layout].append(await _produce(a.bootstrap, batches, topics, broker))
    finally:
        await delete_topics(a.bootstrap, topics.values())
    out: dict[str, Any] = {"events": events, "batch": a.batch, "repeat": a.repeat,
                           "broker_pid_found": broker is not None}
    for layout, runs in results.items():
        out[layout] = {
            "records_per_event": round(counts[layout], 3),
            **{f"{k}_us_per_event": round(statistics.median(r[k] for r in runs) / events * 1e6, 2)
               for k in ("wall", "producer_cpu", "broker_cpu")}}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_records")
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--events", type=int, default=40_000)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--broker-pid", type=int, default=0)
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(_main(a))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
