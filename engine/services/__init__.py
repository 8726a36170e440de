"""Local development services: a real Apache Kafka broker (KRaft) and a real Redis, on loopback.

No Docker: Kafka runs from its own jars (resolved from Maven Central into a cache) on the local
JVM, Redis from the distribution's ``redis-server``. The public entry points live in
:mod:`engine.services.manager` (``up``, ``down``, ``status``, ``ensure_topics``); the modules
:mod:`engine.services.kafka` and :mod:`engine.services.redis` hold each service's specifics.

This module holds the small process primitives both services share: pid files, liveness checks
that see through pid reuse and zombies, graceful termination and TCP probes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from engine.errors import TactError

__all__ = [
    "ServicesError",
    "pid_alive",
    "port_open",
    "read_pid",
    "running_pid",
    "tail_files",
    "terminate",
]


class ServicesError(TactError):
    """A local service could not be resolved, started, stopped or reached."""


def read_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file``, or ``None`` if the file is missing or unreadable."""
    try:
        text = pid_file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it is an exited child of this process; True if it was reaped."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def _proc_state(pid: int) -> str | None:
    """The one-letter state from ``/proc/<pid>/stat`` (``None`` if unknown or gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the state follows the last ')'.
    tail = stat.rsplit(")", 1)[-1].split()
    return tail[0] if tail else None


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process whose command line contains ``marker``.

    The marker guards against pid reuse: a recycled pid running something else is not ours.
    """
    if pid <= 0 or _reap(pid):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _proc_state(pid) in {"Z", "X"}:
        return False
    if marker is None:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no procfs: trust the signal probe
    return marker.encode() in cmdline


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid from ``pid_file`` if that process is alive and is ours; else ``None``."""
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def terminate(pid: int, marker: str, timeout: float) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout`` seconds, then SIGKILL. True if it had to kill."""
    if not pid_alive(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            return False
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 10.0
    while pid_alive(pid, marker) and time.monotonic() < kill_deadline:
        time.sleep(0.05)
    return True


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail_files(paths: Iterable[Path], lines: int = 20) -> str:
    """The last ``lines`` of each readable, non-empty file, headed by its path (for errors)."""
    parts: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if text:
            parts.append(f"--- {path} ---\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)
