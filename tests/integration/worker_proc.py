"""A `tact run` worker (``python -m engine.worker``) as a subprocess of an integration test.

``WorkerProcess`` starts it on a free web port with a test's ``WorkerNames`` environment and
its output in a log file; ``wait_ready`` polls ``/readyz`` (failing with the log's tail if the
process exits), ``stop`` sends SIGTERM and kills it if it does not exit in time. Used as a
context manager, it is stopped on the way out whatever happens.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import aiohttp

from tests.integration.kafka_utils import REPO, WorkerNames, http

T = TypeVar("T")

# what a poll of a starting (or briefly busy) worker may run into; worth another try
TRANSIENT: tuple[type[BaseException], ...] = (OSError, aiohttp.ClientError, TimeoutError)


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0,
                what: str = "condition", *, interval: float = 0.1) -> T:
    """Call ``check`` until it returns something truthy, and return that; a transient network
    error counts as not yet. ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            got = await check()
        except TRANSIENT as e:
            got, last = None, e
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout:g} s"
                               + (f" (last error: {last!r})" if last else ""))
        await asyncio.sleep(interval)


class WorkerProcess:
    """One ``python -m engine.worker`` subprocess; ``args`` and ``env`` are added to the
    web port and to ``names.env()``. The log is appended to, so restarts can share one."""

    def __init__(self, names: WorkerNames, log: Path, *, env: Mapping[str, str] | None = None,
                 args: Sequence[str] = (), port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._out: IO[bytes] = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.worker", *args, "--web-port", str(self.port)],
            env=names.env(**dict(env or {})), cwd=str(REPO), stdout=self._out,
            stderr=subprocess.STDOUT)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the log (this and any earlier process that shared the file)."""
        return self.log.read_text(errors="replace")[-chars:]

    async def wait_ready(self, token: str | None = None, timeout: float = 60.0
                         ) -> dict[str, Any]:
        """Poll ``/readyz`` until it answers 200; its body. ``AssertionError`` with the log's
        tail if the process exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"the worker exited ({self.proc.returncode}):\n"
                                     f"{self.log_tail()}")
            try:
                status, body = await http("GET", f"{self.base}/readyz", token=token, timeout=2)
                if status == 200:
                    return body
            except TRANSIENT:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker was not ready in {timeout:g} s:\n"
                                     f"{self.log_tail()}")
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds; the exit
        code (negative for a signal). Closes the log; harmless once the process is gone."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        code = self.proc.wait(10)
        self._out.close()
        return code

    def kill(self) -> int:
        """SIGKILL at once (a crash); the exit code. Closes the log."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(10)
        self._out.close()
        return code
