"""A private services stack to break, and a `tact run` worker that comes back.

Used by the fault suite (``tests/integration/test_faults.py``) and the soak
(``load_tests/soak.py``). Never the shared services on 9092/6379: :class:`PrivateStack`
runs Kafka and Redis (AOF on, as ``tact services up`` configures it) in its own services dir
on free ports, so killing, restarting and flushing them disturbs no one else.

:class:`Workers` keeps one worker running under a test's names: :meth:`Workers.kill`
SIGKILLs it and starts the next incarnation at once (same worker id, same log), and a
sampler records each incarnation's RSS (``VmRSS`` of ``/proc/<pid>/status``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from engine.services import manager, pid_alive
from tests.integration.kafka_utils import REPO, WorkerNames, http
from tests.integration.worker_proc import TRANSIENT, WorkerProcess, free_port


class PrivateStack:
    """Kafka + Redis of one test module (or one soak) in ``services_dir``, on free ports."""

    def __init__(self, services_dir: Path, **extra: Any) -> None:
        """``extra``: more :class:`~engine.services.manager.ServicesSettings` fields (a SASL
        listener, a Redis Cluster)."""
        self.settings = manager.ServicesSettings(
            services_dir=services_dir, kafka_port=free_port(),
            kafka_controller_port=free_port(), redis_port=free_port(), **extra)
        self.conn = self.settings.connection()

    def up(self, timeout: float = 120.0) -> None:
        result = manager.up(self.settings, timeout=timeout)
        if not result.status.ok:
            raise RuntimeError(f"the private stack did not come up: {result.status}")

    def down(self) -> None:
        manager.down(self.settings, timeout=15.0)

    @contextlib.contextmanager
    def running(self) -> Iterator[manager.ServicesSettings]:
        """Up for the block (a module fixture's lifetime), down after it whatever happens."""
        try:
            self.up()
            yield self.settings
        finally:
            self.down()

    # -- the faults ----------------------------------------------------------------------
    def restart_kafka(self) -> None:
        """Stop the broker (SIGTERM: a controlled shutdown) and start it again."""
        self.settings.kafka_node().stop(30.0)
        self.up()

    def kill_redis(self, down_for: float = 5.0) -> None:
        """SIGKILL Redis, leave it down ``down_for`` seconds, then start it again: it reloads
        its AOF. The Redis client's own retries ride out ~2 s; longer, the worker's batches
        fail and are retried after a back-off."""
        pid = self.settings.redis_node().pid()
        if pid is None:
            raise RuntimeError("the private Redis is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(down_for)
        self.up()

    def flushall(self) -> None:
        client = redis.Redis.from_url(self.conn.redis_url)
        try:
            client.flushall()
        finally:
            client.close()


def rss_kib(pid: int) -> int | None:
    """The process's resident set (VmRSS) in KiB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


@dataclass
class Incarnation:
    """One worker process: its RSS samples (monotonic time, KiB) and how it ended."""

    pid: int
    started: float
    samples: list[tuple[float, int]] = field(default_factory=list)  # once it was ready
    ended: str = "running"
    ready: bool = False

    @property
    def seconds(self) -> float:
        return self.samples[-1][0] - self.started if self.samples else 0.0

    def per_minute(self) -> list[int]:
        """The RSS (KiB) at each whole minute since the first sample, and the last one."""
        if not self.samples:
            return []
        t0 = self.samples[0][0]
        out, minute = [], 0
        for t, kib in self.samples:
            if t - t0 >= minute * 60:
                out.append(kib)
                minute += 1
        return [*out, self.samples[-1][1]]

    def summary(self) -> str:
        if not self.samples:
            return f"pid {self.pid}: no RSS sample ({self.ended})"
        first, last = self.samples[0][1], self.samples[-1][1]
        peak = max(kib for _, kib in self.samples)
        return (f"pid {self.pid}: {self.seconds:6.0f} s, RSS {first / 1024:.1f} -> "
                f"{last / 1024:.1f} MiB (peak {peak / 1024:.1f}, growth "
                f"{(last - first) / 1024:+.1f}), {self.ended}")


class Workers:
    """The worker under test, restarted after each SIGKILL; ``env`` is added to the names'
    environment. ``--no-wall-clock``: follow-ups fire only on the tick records the test
    appends, at quiet points, so the outcome is the same as embedded mode's."""

    def __init__(self, names: WorkerNames, log: Path, env: dict[str, str] | None = None,
                 sample_every: float = 1.0) -> None:
        self.names = names
        self.log = log
        self.env = {"TACT_BATCH_MAX_LATENCY_MS": "0", **(env or {})}
        self.sample_every = sample_every
        self.incarnations: list[Incarnation] = []
        self.current: WorkerProcess | None = None
        self._sampler: asyncio.Task[None] | None = None

    def start(self) -> WorkerProcess:
        w = WorkerProcess(self.names, self.log, env=self.env,
                          args=["--no-wall-clock", "--rules", str(REPO / "rules"),
                                "--log-level", "INFO"])
        self.current = w
        self.incarnations.append(Incarnation(w.proc.pid, time.monotonic()))
        if self._sampler is None:
            self._sampler = asyncio.create_task(self._sample())
        return w

    def kill(self) -> WorkerProcess:
        """SIGKILL the running worker and start the next one."""
        if self.current is None:
            raise RuntimeError("no worker running")
        self._sample_now()
        code = self.current.kill()
        self.incarnations[-1].ended = f"SIGKILL ({code})"
        return self.start()

    def stop(self) -> int:
        """SIGTERM the running worker; its exit code."""
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        if self.current is None:
            return 0
        self._sample_now()
        code = self.current.stop(60)
        self.incarnations[-1].ended = f"stopped ({code})"
        self.current = None
        return code

    def _sample_now(self) -> None:
        inc = self.incarnations[-1] if self.incarnations else None
        if inc is not None and inc.ready and (kib := rss_kib(inc.pid)) is not None:
            inc.samples.append((time.monotonic(), kib))

    async def _sample(self) -> None:
        """RSS every ``sample_every`` seconds, from the moment the incarnation is ready (its
        start-up allocations are not growth)."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                w, inc = self.current, self.incarnations[-1]
                if w is not None and not inc.ready:
                    with contextlib.suppress(*TRANSIENT):
                        status, _ = await http("GET", f"{w.base}/readyz", timeout=1)
                        inc.ready = status == 200 and w.proc.pid == inc.pid
                self._sample_now()
                await asyncio.sleep(self.sample_every)

    def rss_report(self) -> list[str]:
        lines = [inc.summary() for inc in self.incarnations]
        sampled = [inc for inc in self.incarnations if len(inc.samples) > 1]
        if sampled:
            longest = max(sampled, key=lambda inc: inc.seconds)
            lines.append(f"growth within the longest incarnation (pid {longest.pid}, "
                         f"{longest.seconds:.0f} s): "
                         f"{(longest.samples[-1][1] - longest.samples[0][1]) / 1024:+.1f} MiB")
            lines.append("  its RSS by the minute (MiB): " + " ".join(
                f"{kib / 1024:.1f}" for kib in longest.per_minute()))
        return lines
