"""``tact run --processes N``: N worker processes in one consumer group, one supervisor.

A worker runs one core at 100% at saturation (``docs/worker.md``), so a host with more cores
runs more workers. The supervisor starts N children (``python -m engine.worker``), each a
whole worker with its own consumer, transactional producer and Redis connections, in the
same consumer group on the same topics. Child ``i`` is worker ``<worker id>-<i>``: its
transactional id and static group member id are its own, so exactly-once holds as between
separately started workers, and a restarted child takes the same id back (its producer
fences the dead incarnation and aborts its open transaction; no rebalance wait).

The supervisor holds no Kafka or Redis client and decides nothing. It

* restarts a child that exits while the host runs, after a back-off (1 s doubling to 30 s,
  reset once a child has run 60 s), counted in ``tact_worker_restarts``;
* forwards SIGTERM/SIGINT to every child and waits for each to finish its batch in flight
  (commit or abort) and exit; children are in their own session, so a terminal's Ctrl-C
  reaches them once, through here. If the supervisor itself is killed, Linux sends each
  child SIGTERM (``PR_SET_PDEATHSIG``): the same clean stop;
* serves the one web server of the host (:mod:`engine.worker.host_web`); the children's own
  servers listen on loopback ports chosen here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.multiprocess import mark_process_dead

from engine.config import TactSettings

log = logging.getLogger("tact.supervisor")

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class HostOptions:
    """What the supervisor needs: how many children, their ids' stem and their command."""

    settings: TactSettings
    processes: int
    worker_id: str
    child_args: Sequence[str] = ()  # ``python -m engine.worker`` options for every child
    child_env: Mapping[str, str] = field(default_factory=dict)  # added to os.environ
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    stable_after_s: float = 60.0  # a child that ran this long restarts without back-off
    stop_timeout_s: float = 90.0  # then SIGKILL (its open transaction is aborted on restart)


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's choice), for a child's web server."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One slot of the host: its worker id and loopback port, and the current process."""

    slot: int
    worker_id: str
    port: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 0.0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class Supervisor:
    def __init__(self, options: HostOptions) -> None:
        if options.processes < 1:
            raise ValueError("--processes must be at least 1")
        self.options = options
        self.metrics_dir = tempfile.mkdtemp(prefix="tact-metrics-")
        self.children = [Child(i, f"{options.worker_id}-{i}", free_port())
                         for i in range(options.processes)]
        self.stopping = asyncio.Event()

    def child_env(self, child: Child) -> dict[str, str]:
        env = {**os.environ, **self.options.child_env}
        env.update({
            "TACT_WEB_HOST": LOOPBACK,  # only the supervisor's server faces the network
            "TACT_WEB_PORT": str(child.port),
            "TACT_WORKER_ID": child.worker_id,
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
        })
        return env

    async def spawn(self, child: Child) -> None:
        args = [sys.executable, "-m", "engine.worker", *self.options.child_args,
                "--worker-id", child.worker_id, "--web-port", str(child.port)]
        child.proc = await asyncio.create_subprocess_exec(
            *args, env=self.child_env(child), start_new_session=True,
            preexec_fn=_die_with_parent)
        child.started = time.monotonic()
        if self.stopping.is_set():  # the stop came while it was being started
            child.proc.send_signal(signal.SIGTERM)
        log.info("started worker %s (pid %d, loopback port %d)", child.worker_id,
                 child.proc.pid, child.port)

    async def _keep(self, child: Child) -> int:
        """Run one slot until the host stops: restart its process whenever it exits."""
        o = self.options
        while True:
            await self.spawn(child)
            proc = child.proc
            if proc is None:  # spawn always sets it; typed for mypy
                return 1
            code = await proc.wait()
            # its live gauges go; its counters and histograms stay in the sums
            mark_process_dead(proc.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
            if self.stopping.is_set():
                return code
            ran = time.monotonic() - child.started
            child.backoff = (o.backoff_s if ran >= o.stable_after_s or not child.backoff
                             else min(o.max_backoff_s, child.backoff * 2))
            child.restarts += 1
            log.error("worker %s (pid %d) exited with %d after %.1f s; restart %d in %.1f s",
                      child.worker_id, proc.pid, code, ran, child.restarts, child.backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), child.backoff)
            if self.stopping.is_set():
                return code

    def request_stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: SIGTERM to %d worker(s)", len(self.children))
        self.stopping.set()
        for child in self.children:
            if child.alive and child.proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    async def run(self) -> int:
        """Run the host until SIGTERM/SIGINT; 0 when every child stopped cleanly."""
        from engine.worker.host_web import HostWeb

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        web = HostWeb(self, self.options.settings)
        try:
            await web.start()
            slots = [asyncio.create_task(self._keep(c), name=f"tact-slot-{c.slot}")
                     for c in self.children]
            await self.stopping.wait()
            done, pending = await asyncio.wait(slots, timeout=self.options.stop_timeout_s)
            for child in self.children:
                if child.alive and child.proc is not None:
                    log.error("worker %s did not stop in %g s: SIGKILL", child.worker_id,
                              self.options.stop_timeout_s)
                    child.proc.kill()
            codes = [t.result() for t in done] + [1 for _ in pending]
            if pending:
                await asyncio.wait(pending, timeout=10)
            return 0 if all(code == 0 for code in codes) else 1
        finally:
            await web.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)


def run_host(options: HostOptions) -> int:
    """``tact run --processes N``: the process exit code."""
    return asyncio.run(Supervisor(options).run())
