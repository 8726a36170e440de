"""Redis unreachable mid-stream: the worker backs off and retries, commits no offset past the
unprocessed events, reports not ready, and catches up exactly once when Redis is back.

The outage is a TCP proxy between the worker and the real Redis that starts refusing and
dropping connections (the shared Redis itself is never stopped).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import orjson
import pytest

from engine.services import manager
from engine.worker.runtime import StreamWorker, WorkerOptions
from tests.integration.kafka_utils import (
    WorkerNames,
    after,
    committed,
    delete_prefix,
    produce,
    read_committed,
    wait_committed,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class Proxy:
    """Forwards 127.0.0.1:<port> to a target; ``down()`` drops and refuses connections."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.up = True
        self._conns: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            r2, w2 = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._conns |= {writer, w2}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
        self._conns -= {writer, w2}

    def down(self) -> None:
        self.up = False
        for w in list(self._conns):
            w.close()

    async def close(self) -> None:
        self.down()
        if self.server is not None:
            self.server.close()


def _event(i: int) -> tuple[bytes, bytes, None]:
    c = f"c-{i % 7}"
    ev = {"id": f"ev-{i}", "customer": c, "type": "order_shipped",
          "at": "2026-03-02T10:00:00+00:00", "data": {"order": f"O-{i}", "carrier": "UPS"}}
    return c.encode(), orjson.dumps(ev), None


async def test_redis_outage_backs_off_and_recovers(services: manager.Connection) -> None:
    names = WorkerNames.new("outage", services.bootstrap_servers, services.redis_url)
    host_port = services.redis_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = Proxy(host, int(port))
    proxy_port = await proxy.start()
    settings = names.settings(redis_url=f"redis://127.0.0.1:{proxy_port}/0")
    worker = StreamWorker(WorkerOptions(settings=settings, worker_id=names.worker_id,
                                        redis_prefix=names.prefix, wall_clock_ticks=False,
                                        max_backoff_s=0.5))
    await worker.start()
    try:
        meta = await produce(names.bootstrap, names.events, [_event(i) for i in range(20)])
        await wait_committed(names.bootstrap, names.group, after(meta))
        before = await committed(names.bootstrap, names.group)

        proxy.down()
        meta2 = await produce(names.bootstrap, names.events, [_event(i) for i in range(20, 40)])
        await asyncio.sleep(2.0)
        assert worker.batch is not None
        assert not worker.batch.healthy and worker.stats.retries["redis"] >= 2
        assert (await committed(names.bootstrap, names.group)) == before  # nothing moved
        ready = await worker.readiness()
        assert ready["ready"] is False and ready["checks"]["redis"] is False

        proxy.up = True
        await wait_committed(names.bootstrap, names.group, after(meta2), timeout=30)
        assert worker.batch.healthy
        assert (await worker.readiness())["ready"] is True
        decisions = await read_committed(names.bootstrap, names.decisions)
    finally:
        await worker.stop()
        await proxy.close()
        await delete_prefix(names.redis_url, names.prefix)
    events = Counter(orjson.loads(r.value)["event_id"] for r in decisions)
    assert set(events) == {f"ev-{i}" for i in range(40)}
    ids = Counter(orjson.loads(r.value)["id"] for r in decisions)
    assert max(ids.values()) == 1
    assert before
