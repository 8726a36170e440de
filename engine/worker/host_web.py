"""The one web server of ``tact run --processes N`` (``TACT_WEB_HOST:TACT_WEB_PORT``).

The same endpoints and the same token rules as a single worker (:mod:`engine.worker.web`),
for the whole host:

* ``/metrics``: prometheus-client's multiprocess collector over the children's files (the
  sum of counters and histograms, also across restarts; gauges as each declares), plus the
  supervisor's own ``tact_worker_restarts`` and ``tact_worker_processes``;
* ``/healthz``: 200 when every child process runs and answers its own ``/healthz``;
* ``/readyz``: 200 when every child is ready; open, each child's state (``worker-<i>``);
  with the token also each child's detailed body;
* ``/stats`` and ``/api/dashboard``: the children's bodies combined
  (:mod:`engine.worker.host_merge`);
* ``POST /admin/reload``: token checked here, then sent to every child (each answers for its
  own pack); 200 only when all swapped or kept a valid pack;
* anything else (``/dashboard``, ``/customers/{id}``, ``POST /events``,
  ``/api/dashboard/uplift``): passed to one live child as it came, token included (the child
  checks it); all children read and write the same Redis and Kafka.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from engine.config import TactSettings
from engine.worker.host_merge import merge_dashboards, merge_stats
from engine.worker.web import authenticated, refusal

if TYPE_CHECKING:
    from engine.worker.supervisor import Child, Supervisor

log = logging.getLogger("tact.supervisor")

CHILD_TIMEOUT_S = 5.0
PASSED_HEADERS = ("Authorization", "Accept", "Content-Type")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HostWeb:
    def __init__(self, supervisor: Supervisor, settings: TactSettings) -> None:
        self.supervisor = supervisor
        self.settings = settings
        self.registry = CollectorRegistry()
        self.restarts = Counter("tact_worker_restarts", "Worker processes restarted by the "
                                "supervisor after they exited.", ["worker"],
                                registry=self.registry)
        self.processes = Gauge("tact_worker_processes", "Worker processes running on this "
                               "host.", registry=self.registry)
        self.processes.set_function(
            lambda: sum(1 for c in supervisor.children if c.alive))
        self._seen_restarts = {c.slot: 0 for c in supervisor.children}
        self._rotation = itertools.cycle(range(len(supervisor.children)))
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    # -- server ---------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.settings
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CHILD_TIMEOUT_S))
        app = web.Application()
        app.router.add_get("/healthz", self._guard(s.protect_health, self.healthz))
        app.router.add_get("/readyz", self._guard(s.protect_health, self.readyz))
        app.router.add_get("/metrics", self._guard(s.protect_metrics, self.metrics))
        app.router.add_get("/stats", self._guard(s.protect_metrics, self.stats))
        app.router.add_get("/api/dashboard", self._guard(s.protect_metrics, self.dashboard))
        app.router.add_post("/admin/reload", self._guard(True, self.reload))
        app.router.add_route("*", "/{tail:.*}", self.proxy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, s.web_host, s.web_port).start()
        log.info("host web server on %s:%d for %d worker(s)", s.web_host, s.web_port,
                 len(self.supervisor.children))

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def _guard(self, protected: bool, handler: Handler) -> Handler:
        token = self.settings.api_token

        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = refusal(token, request.headers.get("Authorization"), protected)
            if refused is not None:
                status, body = refused
                return web.json_response(body, status=status)
            return await handler(request)

        return guarded

    # -- children -------------------------------------------------------------------------
    async def _call(self, child: Child, method: str, path: str, request: web.Request,
                    data: bytes | None = None) -> tuple[int, bytes, str]:
        if self._session is None:
            raise RuntimeError("the host web server has not started")
        headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
        async with self._session.request(method, child.base_url + path, headers=headers,
                                         data=data) as resp:
            return (resp.status, await resp.read(),
                    resp.headers.get("Content-Type", "application/octet-stream"))

    async def _json_all(self, method: str, path: str, request: web.Request
                        ) -> dict[str, tuple[int, Any]]:
        """Each child's (status, JSON body); status 0 and the error for one that did not
        answer."""
        async def one(child: Child) -> tuple[int, Any]:
            if not child.alive:
                return 0, {"error": "not running"}
            try:
                status, body, _ = await self._call(child, method, path, request)
                return status, _loads(body)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                return 0, {"error": f"no answer: {exc.__class__.__name__}"}

        children = self.supervisor.children
        answers = await asyncio.gather(*(one(c) for c in children))
        return {f"worker-{c.slot}": a for c, a in zip(children, answers, strict=True)}

    # -- endpoints ------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.StreamResponse:
        answers = await self._json_all("GET", "/healthz", request)
        alive = {name: status == 200 for name, (status, _) in answers.items()}
        ok = all(alive.values())
        return web.json_response({"alive": ok, "workers": alive}, status=200 if ok else 503)

    async def readyz(self, request: web.Request) -> web.StreamResponse:
        answers = await self._json_all("GET", "/readyz", request)
        checks = {name: status == 200 for name, (status, _) in answers.items()}
        ready = all(checks.values())
        body: dict[str, Any] = {"ready": ready, "checks": checks}
        if authenticated(self.settings.api_token, request.headers.get("Authorization")):
            body["workers"] = {
                f"worker-{c.slot}": {**answers[f"worker-{c.slot}"][1], "process": {
                    "worker_id": c.worker_id, "pid": c.proc.pid if c.alive and c.proc else None,
                    "port": c.port, "restarts": c.restarts}}
                for c in self.supervisor.children}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        for child in self.supervisor.children:
            new = child.restarts - self._seen_restarts[child.slot]
            if new > 0:
                self.restarts.labels(child.worker_id).inc(new)
                self._seen_restarts[child.slot] = child.restarts
        combined = CollectorRegistry()
        MultiProcessCollector(combined, path=self.supervisor.metrics_dir)  # type: ignore[no-untyped-call]
        # reading the children's files is plain file I/O: off the event loop
        text = await asyncio.to_thread(
            lambda: generate_latest(combined) + generate_latest(self.registry))
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _merged(self, path: str, request: web.Request,
                      merge: Callable[[list[Any]], dict[str, Any]]) -> web.StreamResponse:
        answers = await self._json_all("GET", path, request)
        bodies = [body for status, body in answers.values() if status == 200]
        missing = sorted(name for name, (status, _) in answers.items() if status != 200)
        body = merge(bodies)
        body["missing_workers"] = missing  # counts of these are not in the sums
        return web.json_response(body)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        return await self._merged("/stats", request, merge_stats)

    async def dashboard(self, request: web.Request) -> web.StreamResponse:
        return await self._merged("/api/dashboard", request, merge_dashboards)

    async def reload(self, request: web.Request) -> web.StreamResponse:
        answers = await self._json_all("POST", "/admin/reload", request)
        ok = all(status == 200 for status, _ in answers.values())
        bodies = [body for _, body in answers.values()]
        body: dict[str, Any] = dict(bodies[0]) if bodies and isinstance(bodies[0], dict) else {}
        body.update({"ok": ok, "workers": {name: a for name, (_, a) in answers.items()}})
        return web.json_response(body, status=200 if ok else 422)

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """One live child answers, the request passed as it came."""
        children = self.supervisor.children
        for _ in range(len(children)):
            child = children[next(self._rotation)]
            if not child.alive:
                continue
            data = await request.read() if request.can_read_body else None
            try:
                status, body, ctype = await self._call(child, request.method,
                                                       request.path_qs, request, data)
            except aiohttp.ClientConnectorError:
                continue  # it never got the request: another child may take it
            except (aiohttp.ClientError, TimeoutError) as exc:
                # it may have acted (an ingest): not sent again, the caller decides
                return web.json_response({"error": f"worker did not answer: {exc!r}"},
                                         status=502)
            return web.Response(status=status, body=body,
                                headers={"Content-Type": ctype, "Cache-Control": "no-store"})
        return web.json_response({"error": "no worker process is running"}, status=503)


def _loads(body: bytes) -> Any:
    import orjson

    return orjson.loads(body)
