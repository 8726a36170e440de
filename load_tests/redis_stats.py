"""Redis round trips per batch, from ``INFO commandstats`` and ``INFO stats`` deltas.

Take a :func:`snapshot` before and after a run; :func:`delta` gives, per command, how many
calls the server executed in between. Calls are not round trips: a pipeline of 500 GETs is
500 calls and one round trip. Round trips are estimated from ``total_reads_processed``, the
number of read events the server handled on client sockets: a pipeline that arrives in one
packet is one read (a pipeline larger than Redis's 16 KB read buffer takes a few reads, so
the estimate errs high). The snapshots' own ``INFO`` calls are subtracted.

Batches: the figures are divided by the number of batches the worker reports in ``GET
/stats`` (``batches``: one per ``getmany`` batch that went through the core and committed
its Kafka transaction). When that endpoint is not reachable, the caller passes an estimate
(the Kafka transaction markers in the decisions topic; see ``load_tests/compare.py``).

The counters are server-wide: other clients of the same Redis in the same window are
counted too. Standalone, around anything::

    python -m load_tests.redis_stats --seconds 20 [--batches 1234] [--url redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from rich.console import Console
from rich.table import Table

OWN_READS = 1  # each snapshot is one INFO call: one read event, one `info` call


@dataclass(frozen=True, slots=True)
class Snapshot:
    calls: dict[str, int]
    reads: int
    writes: int
    commands: int
    at: float


@dataclass(slots=True)
class Delta:
    calls: dict[str, int] = field(default_factory=dict)  # command -> calls
    reads: int = 0  # read events: the round-trip estimate
    writes: int = 0
    seconds: float = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def per(self, n: int | None) -> dict[str, Any]:
        """Calls per command and round trips, divided by ``n`` (batches or events)."""
        if not n:
            return {}
        return {
            "calls": {c: round(k / n, 3) for c, k in sorted(self.calls.items())},
            "calls_total": round(self.total_calls / n, 3),
            "round_trips": round(self.reads / n, 3),
        }

    def as_dict(self, batches: int | None = None, events: int | None = None) -> dict[str, Any]:
        return {
            "calls": dict(sorted(self.calls.items())),
            "round_trips_estimate": self.reads,
            "seconds": round(self.seconds, 3),
            "batches": batches,
            "per_batch": self.per(batches),
            "per_event": self.per(events),
        }


def connect(url: str) -> Redis:
    """A client for snapshots; keep it for the before and the after (a new connection's
    handshake would be counted as traffic)."""
    client = Redis.from_url(url)
    client.ping()
    return client


def snapshot(client: Redis) -> Snapshot:
    """One ``INFO all`` call: command stats and server stats."""
    info: dict[str, Any] = client.info("all")
    calls: dict[str, int] = {}
    for key, value in info.items():
        if key.startswith("cmdstat_") and isinstance(value, dict):
            calls[key[len("cmdstat_"):]] = int(value.get("calls", 0))
    return Snapshot(calls, int(info.get("total_reads_processed", 0)),
                    int(info.get("total_writes_processed", 0)),
                    int(info.get("total_commands_processed", 0)), time.time())


def delta(before: Snapshot, after: Snapshot) -> Delta:
    d = Delta(seconds=after.at - before.at)
    for cmd, n in after.calls.items():
        k = n - before.calls.get(cmd, 0)
        if cmd == "info":
            k -= 1  # the `after` snapshot's own call
        if k > 0:
            d.calls[cmd] = k
    d.reads = max(0, after.reads - before.reads - OWN_READS)  # minus the `after` INFO
    d.writes = max(0, after.writes - before.writes - OWN_READS)
    return d


def _skip(buf: bytes, i: int) -> int | None:
    """End of the RESP2/RESP3 value that starts at ``i``; None if not all there yet."""
    nl = buf.find(b"\r\n", i)
    if nl < 0:
        return None
    kind = buf[i]
    if kind in b"$=!":  # bulk string, verbatim string, bulk error
        n = int(buf[i + 1:nl])
        end = nl + 2 if n < 0 else nl + 4 + n
        return end if end <= len(buf) else None
    if kind in b"*>~%|":  # array, push, set, map, attribute
        n = int(buf[i + 1:nl])
        n = n * 2 if kind in b"%|" else n
        j: int | None = nl + 2
        for _ in range(max(n, 0)):
            j = _skip(buf, j) if j is not None and j < len(buf) else None
            if j is None:
                return None
        if kind == ord("|"):  # an attribute is followed by the value it annotates
            return _skip(buf, j) if j is not None and j < len(buf) else None
        return j
    return nl + 2  # + - : _ , # ( : one line


def _first_command(data: bytes) -> str:
    """``GET`` from ``*2\\r\\n$3\\r\\nGET\\r\\n...`` (a request is an array of bulk strings)."""
    parts = data.split(b"\r\n", 3)
    return parts[2].decode("ascii", "replace").upper() if len(parts) > 2 else "?"


class _Resp:
    """Counts complete top-level RESP values in a byte stream."""

    def __init__(self) -> None:
        self.buf = b""
        self.count = 0

    def feed(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        i = 0
        while i < len(buf):
            j = _skip(buf, i)
            if j is None:
                break
            i = j
            self.count += 1
        self.buf = buf[i:]


class RoundTripProxy:
    """A TCP relay in front of Redis that counts round trips.

    Per connection it counts the commands sent and the replies received (RESP parsing);
    a round trip starts when the client sends while every command it sent before has its
    reply, i.e. it waited. A pipeline is one round trip however many TCP segments carry it
    (unless a segment ends exactly on a command boundary and Redis answers all of it before
    the next arrives: rare, and then the count errs high). For a dedicated measuring run
    only: the relay adds a hop and CPU of its own.
    """

    def __init__(self, upstream_url: str) -> None:
        u = urlsplit(upstream_url)
        self.upstream_url = upstream_url
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 6379
        self.round_trips = 0
        self.commands = 0
        self.by_command: dict[str, int] = {}  # round trips by their first command
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.listen_port = 0

    def url(self) -> str:
        """The upstream URL with the relay's address (same db, same credentials)."""
        u = urlsplit(self.upstream_url)
        auth = u.netloc.rpartition("@")[0]
        netloc = (auth + "@" if auth else "") + f"127.0.0.1:{self.listen_port}"
        return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections += 1
        sent, got = _Resp(), _Resp()
        try:
            ur, uw = await asyncio.open_connection(self.host, self.port)
        except OSError:
            cw.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            try:
                while data := await src.read(65536):
                    if up:
                        if got.count >= sent.count and not sent.buf:
                            self.round_trips += 1
                            name = _first_command(data)
                            self.by_command[name] = self.by_command.get(name, 0) + 1
                        before = sent.count
                        sent.feed(data)
                        self.commands += sent.count - before
                    else:
                        got.feed(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError, ValueError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pump(cr, uw, True), pump(ur, cw, False))
        except asyncio.CancelledError:
            cw.close()
            uw.close()
        finally:
            if task is not None:
                self._tasks.discard(task)


def table(d: Delta, batches: int | None, events: int | None, title: str) -> Table:
    t = Table(title=title)
    t.add_column("command")
    t.add_column("calls", justify="right")
    t.add_column("per batch", justify="right")
    t.add_column("per event", justify="right")

    def ratio(k: int, n: int | None) -> str:
        return f"{k / n:.3f}" if n else "-"

    for cmd, k in sorted(d.calls.items(), key=lambda kv: -kv[1]):
        t.add_row(cmd, f"{k:,}", ratio(k, batches), ratio(k, events))
    t.add_row("[b]all calls[/]", f"{d.total_calls:,}", ratio(d.total_calls, batches),
              ratio(d.total_calls, events))
    t.add_row("[b]round trips (read events)[/]", f"{d.reads:,}", ratio(d.reads, batches),
              ratio(d.reads, events))
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.redis_stats", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--seconds", type=float, default=10.0, help="window to watch")
    p.add_argument("--batches", type=int, default=None, help="batches in the window")
    p.add_argument("--events", type=int, default=None, help="events in the window")
    a = p.parse_args(argv)
    client = connect(a.url)
    before = snapshot(client)
    time.sleep(max(0.0, min(a.seconds, 3600.0)))
    d = delta(before, snapshot(client))
    client.close()
    Console(stderr=True).print(table(d, a.batches, a.events, f"Redis over {d.seconds:.1f} s"))
    print(json.dumps(d.as_dict(a.batches, a.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
