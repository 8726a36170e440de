"""Latency to visibility: when a ``read_committed`` consumer actually receives a decision.

The append time of a decision (what :mod:`load_tests.measure` reads) comes before its
transaction commits; a downstream reader sees it only once the commit marker is written.
This tailer is its own process (the load generator's event loop must not delay it), runs
on the same machine as the producer (one clock), is started before the system under test
and tails its output topic from the beginning. It notes the wall-clock time each event's
output arrives (the last one, when an event has several), and on SIGTERM writes
``{event id: receive ms}`` as JSON::

    python -m load_tests.visibility --topic lt.x.c.steady.out --out /tmp/recv.json

Receive times are taken when ``getmany`` hands the records over; the fetch waits at most
``FETCH_WAIT_MS`` for data, so the figure is late by at most about that much.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from load_tests.measure import _doc, _event_id, partitions_of, percentile

FETCH_WAIT_MS = 5


def latency_stats(values: Iterable[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank), max and mean of latencies in ms (zeros when empty)."""
    lat = sorted(values)
    return {"p50": round(percentile(lat, 50), 1), "p95": round(percentile(lat, 95), 1),
            "p99": round(percentile(lat, 99), 1), "max": round(lat[-1], 1) if lat else 0.0,
            "mean": round(sum(lat) / len(lat), 2) if lat else 0.0}


def visibility_latencies(events: Mapping[str, int], received: Mapping[str, float]
                         ) -> list[float]:
    """Event CreateTime -> receive time (ms) for each event the tailer saw an output of;
    outputs of other events (warm-up, another run) are left out."""
    return [received[e] - created for e, created in events.items() if e in received]


class Tailer:
    """The tailer as a subprocess of the load test: start before the run, stop after."""

    def __init__(self, brokers: str, topic: str, out: Path) -> None:
        self.brokers, self.topic, self.out = brokers, topic, out
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 60.0) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "load_tests.visibility", "--brokers", self.brokers,
            "--topic", self.topic, "--out", str(self.out), stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL)
        stdout = self.proc.stdout
        line = await asyncio.wait_for(stdout.readline(), timeout) if stdout else b""
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"visibility tailer did not start on {self.topic}: {line!r}")

    async def stop(self, grace: float = 1.0) -> dict[str, float]:
        """Let it take the last commits (``grace`` s), stop it, read what it received."""
        p = self.proc
        if p is None:
            return {}
        if p.returncode is None:
            await asyncio.sleep(grace)
            p.terminate()
            try:
                await asyncio.wait_for(p.wait(), 30)
            except TimeoutError:
                p.kill()
                await p.wait()
        try:
            received: dict[str, float] = json.loads(self.out.read_text())
        except (OSError, ValueError):
            return {}
        return received


async def tail(brokers: str, topic: str, out: Path) -> int:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers, client_id="tact-loadtest-tail")
    await admin.start()
    try:
        parts = await partitions_of(admin, topic)
    finally:
        await admin.close()
    if not parts:
        print(f"visibility: no partitions for {topic}", file=sys.stderr, flush=True)
        return 2
    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                                isolation_level="read_committed",
                                fetch_max_wait_ms=FETCH_WAIT_MS, client_id="tact-loadtest-tail")
    await consumer.start()
    received: dict[str, float] = {}
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        for tp in parts:  # positioned before the system starts: nothing is missed
            await consumer.position(tp)
        print("ready", flush=True)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=20_000)
            now_ms = time.time() * 1000.0
            for records in batch.values():
                for r in records:
                    eid = _event_id(_doc(r.value))
                    if eid is not None:
                        received[eid] = now_ms
    finally:
        await consumer.stop()
        out.write_text(json.dumps(received))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.visibility", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--brokers", default="127.0.0.1:9092")
    p.add_argument("--topic", required=True, help="the output topic to tail")
    p.add_argument("--out", type=Path, required=True, help="JSON {event id: receive ms}")
    a = p.parse_args(argv)
    return asyncio.run(tail(a.brokers, a.topic, a.out))


if __name__ == "__main__":
    raise SystemExit(main())
