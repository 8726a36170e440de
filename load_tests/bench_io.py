"""The worker's per-batch CPU outside Kafka's network and Redis's server, in-process.

Runs the worker's batch path on the load-test pack without a broker: the generator's
events as record bytes, ``decode_event`` for each, :class:`BatchProcessor` on a memory
store (state read and decode, ``decide()``, decision JSON, state encoding, changelog
records), and the records appended to aiokafka's record batches per partition as
``send_batches`` does (the C builder; the network send is not counted). Prints one JSON
line: CPU microseconds per event for each stage (process time: the machine is shared),
user and system time and page faults per event, the records per event, and with ``--profile``
the top functions of a cProfile run (cumulative), to a file::

    PYTHONPATH=$PWD python -m load_tests.bench_io                      # ~40 s
    PYTHONPATH=$PWD python -m load_tests.bench_io --profile /tmp/io.prof
    PYTHONPATH=$PWD python -m load_tests.bench_io --layout per-event   # output formats
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/io.cg \
        python -m load_tests.bench_io --callgrind --events 10000 --repeat 1  # instructions

``--callgrind`` switches callgrind's instrumentation on for the counted runs only (the
events' generation and the warm-up are left out): ``grep ^totals /tmp/io.cg`` divided by
``--events`` times ``--repeat`` is instructions per event, steady on a busy machine.

``--layout`` (measurement only, the worker does not do this): ``per-decision`` is
today's one record per decision; ``per-event`` one record per event carrying all its
decisions (a JSON array); ``split`` sent decisions in the decisions topic, suppressed ones
in a topic of their own.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import orjson

from engine.pack.loader import load_pack
from engine.pipeline import decide
from engine.state.memory.store import MemoryStateStore
from engine.worker import process
from engine.worker.codec import Source, decode_event
from engine.worker.process import BatchProcessor, InRecord, OutRecord, gc_paused
from engine.worker.stats import WorkerStats
from load_tests.callgrind_decide import instrument
from load_tests.generator import generate_events, kafka_key

PACK = Path(__file__).parent / "packs" / "loadtest"
PARTITIONS = 6
LAYOUTS = ("per-decision", "per-event", "split")


def _records(n: int, customers: int, seed: int) -> list[tuple[int, bytes, bytes]]:
    out = []
    for ev in generate_events(n, customers, seed=seed, start_time=time.time() - n * 0.01):
        key = kafka_key(ev)
        out.append((hash(key) % PARTITIONS, key, orjson.dumps(ev)))
    return out


def _relayout(out: list[OutRecord], layout: str, decisions_topic: str) -> list[OutRecord]:
    """The batch's decision records in another layout (the measurement of ``--layout``)."""
    if layout == "per-decision":
        return out
    kept = [r for r in out if r.topic != decisions_topic]
    if layout == "per-event":
        # consecutive records of one key come from one event (source order is kept)
        grouped: list[OutRecord] = []
        run: list[OutRecord] = []
        for r in out:
            if r.topic != decisions_topic:
                continue
            if run and run[-1].key != r.key:
                grouped.append(_joined(run))
                run = []
            run.append(r)
        if run:
            grouped.append(_joined(run))
        return grouped + kept
    split = []
    for r in out:
        if r.topic == decisions_topic:
            sent = b'"outcome":"sent"' in r.value
            split.append(OutRecord(decisions_topic if sent else "suppressed", r.key,
                                   r.value, r.headers))
    return split + kept


def _joined(run: list[OutRecord]) -> OutRecord:
    return OutRecord(run[0].topic, run[0].key, b"[" + b",".join(r.value for r in run) + b"]",
                     run[0].headers)


def _append_all(producer: Any, records: list[OutRecord]) -> int:
    """Group by (topic, partition) and append to aiokafka's record batches, as the worker's
    ``engine.worker.produce.send_batches`` does; returns the number of record batches."""
    groups: dict[tuple[str, int], list[OutRecord]] = {}
    for r in records:
        p = r.partition if r.partition is not None else hash(r.key) % PARTITIONS
        groups.setdefault((r.topic, p), []).append(r)
    batches = 0
    for rs in groups.values():
        batch = producer.create_batch()
        for r in rs:
            if batch.append(key=r.key, value=r.value, timestamp=None,
                            headers=r.headers) is None:
                batch.close()
                batches += 1
                batch = producer.create_batch()
                batch.append(key=r.key, value=r.value, timestamp=None, headers=r.headers)
        batch.close()
        batch._builder.build()
        batches += 1
    return batches


class Bench:
    def __init__(self, batch: int, layout: str) -> None:
        self.pack = load_pack(PACK)
        self.store = MemoryStateStore()
        self.processor = BatchProcessor(self.store, WorkerStats(), decisions_topic="decisions",
                                        dead_letter_topic="dead", state_topic="state")
        self.batch = batch
        self.layout = layout
        self.times: dict[str, float] = {"decode": 0.0, "process": 0.0, "decide": 0.0,
                                        "records": 0.0, "apply": 0.0}
        self.rusage: dict[str, float] = {}
        self.counts = {"events": 0, "records": 0, "decision_records": 0, "record_batches": 0,
                       "bytes": 0}

    async def run(self, records: list[tuple[int, bytes, bytes]], producer: Any,
                  clock: Callable[[], float] = time.process_time) -> None:
        times = self.times

        def timed_decide(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return decide(*args, **kwargs)
            finally:
                times["decide"] += clock() - t0

        before = resource.getrusage(resource.RUSAGE_SELF)
        with mock.patch.object(process, "decide", timed_decide):
            for start in range(0, len(records), self.batch):
                chunk = records[start:start + self.batch]
                with gc_paused():
                    await self._one(chunk, producer, clock)
                gc.collect(0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.rusage = {"user": after.ru_utime - before.ru_utime,
                       "sys": after.ru_stime - before.ru_stime,
                       "minflt": after.ru_minflt - before.ru_minflt}

    async def _one(self, chunk: list[tuple[int, bytes, bytes]], producer: Any,
                   clock: Callable[[], float]) -> None:
        t = self.times
        t0 = clock()
        received = time.time()
        window = self.processor_window(received)
        ins = []
        for offset, (p, key, value) in enumerate(chunk):
            src = Source("events", p, offset, 0)
            ins.append(InRecord(p, offset, decode_event(key, value, None, src, received, window),
                                src, key, value))
        t1 = clock()
        processed = await self.processor.process(self.pack, ins)
        t2 = clock()
        out = _relayout(processed.records, self.layout, "decisions")
        self.counts["record_batches"] += _append_all(producer, out)
        t3 = clock()
        await self.processor.apply(processed, {})
        t4 = clock()
        t["decode"] += t1 - t0
        t["process"] += t2 - t1
        t["records"] += t3 - t2
        t["apply"] += t4 - t3
        c = self.counts
        c["events"] += len(chunk)
        c["records"] += len(out)
        c["decision_records"] += sum(1 for r in out if r.topic in ("decisions", "suppressed"))
        c["bytes"] += sum(len(r.value) for r in out)

    @staticmethod
    def processor_window(received: float) -> Any:
        from engine.models.limits import EventBounds

        return EventBounds().window(received)

    def figures(self) -> dict[str, Any]:
        n = self.counts["events"] or 1
        per = {k: round(v / n * 1e6, 2) for k, v in self.times.items()}
        total = sum(v for k, v in self.times.items() if k != "decide")  # decide: in process
        per["total"] = round(total / n * 1e6, 2)
        per["outside_decide"] = round((total - self.times["decide"]) / n * 1e6, 2)
        per["user"] = round(self.rusage["user"] / n * 1e6, 2)
        per["sys"] = round(self.rusage["sys"] / n * 1e6, 2)
        return {"us_per_event": per,
                "page_faults_per_event": round(self.rusage["minflt"] / n, 3),
                "records_per_event": round(self.counts["records"] / n, 3),
                "decision_records_per_event": round(self.counts["decision_records"] / n, 3),
                "bytes_per_event": round(self.counts["bytes"] / n),
                "record_batches": self.counts["record_batches"]}


async def _main(a: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", linger_ms=0)  # never started
    records = _records(a.events, a.customers, a.seed)
    runs = []
    profiler = cProfile.Profile() if a.profile else None
    await Bench(a.batch, a.layout).run(records[: a.batch * 2], producer)  # imports, caches
    if a.callgrind:
        instrument(True)
    for _ in range(a.repeat):
        bench = Bench(a.batch, a.layout)
        await bench.run(records, producer)
        runs.append(bench.figures())
    if a.callgrind:
        instrument(False)
    if profiler is not None:  # one more run, not counted: the profiler slows it down
        bench = Bench(a.batch, a.layout)
        profiler.enable()
        await bench.run(records, producer)
        profiler.disable()
        profiler.dump_stats(a.profile)
    per = {k: round(statistics.median(r["us_per_event"][k] for r in runs), 2)
           for k in runs[0]["us_per_event"]}
    del producer
    return {"layout": a.layout, "events": a.events, "batch": a.batch, "repeat": a.repeat,
            "us_per_event_median": per, **{k: v for k, v in runs[-1].items()
                                           if k != "us_per_event"}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_io")
    p.add_argument("--events", type=int, default=40_000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--layout", choices=LAYOUTS, default="per-decision")
    p.add_argument("--profile", default="", help="write a cProfile of the last run here")
    p.add_argument("--callgrind", action="store_true",
                   help="count only the runs under valgrind's callgrind (see above)")
    a = p.parse_args(argv)
    print(json.dumps(asyncio.run(_main(a))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
