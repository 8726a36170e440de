"""The Faust app of ``tact run``: lifecycle, signals, web server and timers.

Faust's own Kafka consumer and producer are switched off (``enable_kafka=False`` in the boot
strategy): a plain Faust agent moves events one at a time through its stream machinery,
about 10k events/s on the project's machine, where aiokafka's ``getmany`` reads 600k+/s
(``docs/worker.md``). Consumption is the :class:`~engine.worker.batch.BatchConsumer` run by
a Faust service; Faust keeps what it is good at:

* the worker process: start-up, SIGTERM/SIGINT, an orderly stop (the batch in flight
  finishes and commits, then the consumer leaves the group and the producers close);
* the web server on ``TACT_WEB_PORT`` (6066): ``GET /healthz``, ``GET /readyz``,
  ``GET /stats``, ``GET /metrics`` (Prometheus), ``GET /dashboard`` (the live page) and
  ``GET /api/dashboard`` (its data), all open unless ``TACT_PROTECT_HEALTH`` /
  ``TACT_PROTECT_METRICS``; ``POST /events`` (ingest) and ``POST /admin/reload`` always need
  the bearer ``TACT_API_TOKEN``;
* timers: the follow-up timer (``followup_interval_s``) and the rules watcher
  (``reload_interval_s``).
"""

from __future__ import annotations

import functools
import hmac
import logging
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import faust
from aiohttp import web
from faust.app.base import BootStrategy
from mode import Service
from prometheus_client.exposition import CONTENT_TYPE_LATEST as CONTENT_TYPE

from connectors.http.ingest import IngestHandler, make_aiohttp_view
from engine.errors import RulePackError
from engine.pack.loader import load_pack
from engine.worker.runtime import StreamWorker, WorkerOptions

log = logging.getLogger("tact.worker")


class _Boot(BootStrategy):
    """Web server, sensors and timers; no Faust consumer, producer, agents' topics or tables."""

    enable_kafka = False


class TactApp(faust.App):
    BootStrategy = _Boot


def _guard(worker: StreamWorker, request: Any,
           protected: bool) -> tuple[int, dict[str, str]] | None:
    """None when the request may go on; else the (status, body) refusing it.

    Protected endpoints need ``Authorization: Bearer <TACT_API_TOKEN>``; with no token
    configured they are disabled (403) rather than open.
    """
    if not protected:
        return None
    token = worker.settings.api_token
    if token is None:
        return 403, {"error": "disabled: set TACT_API_TOKEN to use this endpoint"}
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.get_secret_value().encode())
    return None if ok else (401, {"error": "missing or wrong bearer token"})


@functools.cache
def dashboard_html() -> bytes:
    return (resources.files("engine.observability") / "static" / "dashboard.html").read_bytes()


def create_app(options: WorkerOptions,
               exit_code: list[int] | None = None) -> tuple[faust.App, StreamWorker]:
    """The Faust app around a :class:`StreamWorker`; ``exit_code[0]`` becomes 1 on a crash."""
    code: list[int] = exit_code if exit_code is not None else [0]
    s = options.settings
    worker = StreamWorker(options)
    datadir = Path(tempfile.gettempdir()) / "tact-faust" / options.worker_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = TactApp(
        f"tact-{s.consumer_group}",
        broker=[f"kafka://{b}" for b in s.brokers()],
        web_enabled=True,
        web_bind=s.web_host,
        web_port=s.web_port,
        web_host=s.web_host,
        datadir=str(datadir),
        store="memory://",
        topic_disable_leader=True,
        autodiscover=False,
    )

    class Consumer(Service):
        """Runs the stream worker; its failure stops the process (non-zero exit)."""

        async def on_start(self) -> None:
            await worker.start()

        async def on_stop(self) -> None:
            await worker.stop()

        @Service.task  # type: ignore[untyped-decorator,unused-ignore]
        async def _supervise(self) -> None:
            task = worker.task
            if task is None:
                return
            try:
                await task
            except Exception as exc:
                log.critical("the batch consumer failed: %s", exc, exc_info=exc)
                code[0] = 1
                await app.crash(exc)

    app.service(Consumer)

    @app.timer(interval=s.followup_interval_s)  # type: ignore[untyped-decorator,unused-ignore]
    async def followups() -> None:
        if worker.started:
            await worker.followup_tick()

    @app.timer(interval=s.telemetry_interval_s)  # type: ignore[untyped-decorator,unused-ignore]
    async def telemetry() -> None:
        if worker.started:
            await worker.refresh_telemetry()

    @app.timer(interval=s.reload_interval_s)  # type: ignore[untyped-decorator,unused-ignore]
    async def rules_watch() -> None:
        if worker.started:
            await worker.reload_poll()

    @app.page("/healthz")  # type: ignore[untyped-decorator,unused-ignore]
    class Health(faust.web.View):
        async def get(self, request: Any) -> Any:
            refused = _guard(worker, request, s.protect_health)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            task = worker.task
            dead = task is not None and task.done()
            return self.json({"alive": not dead}, status=503 if dead else 200)

    @app.page("/readyz")  # type: ignore[untyped-decorator,unused-ignore]
    class Ready(faust.web.View):
        async def get(self, request: Any) -> Any:
            refused = _guard(worker, request, s.protect_health)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            if not worker.started:
                return self.json({"ready": False, "checks": {"started": False}}, status=503)
            body = await worker.readiness()
            return self.json(body, status=200 if body["ready"] else 503)

    @app.page("/stats")  # type: ignore[untyped-decorator,unused-ignore]
    class Stats(faust.web.View):
        async def get(self, request: Any) -> Any:
            refused = _guard(worker, request, s.protect_metrics)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            return self.json(worker.stats.snapshot())

    @app.page("/metrics")  # type: ignore[untyped-decorator,unused-ignore]
    class MetricsPage(faust.web.View):
        async def get(self, request: Any) -> Any:
            refused = _guard(worker, request, s.protect_metrics)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            return web.Response(body=worker.telemetry.render_metrics(),
                                headers={"Content-Type": CONTENT_TYPE})

    @app.page("/dashboard")  # type: ignore[untyped-decorator,unused-ignore]
    class Dashboard(faust.web.View):
        async def get(self, request: Any) -> Any:
            # the page itself holds no data; with protect_metrics on, it sends the token
            # given in its URL fragment (never sent to the server) with each poll
            return web.Response(body=dashboard_html(), content_type="text/html",
                                charset="utf-8", headers={"Cache-Control": "no-store"})

    @app.page("/api/dashboard")  # type: ignore[untyped-decorator,unused-ignore]
    class DashboardData(faust.web.View):
        async def get(self, request: Any) -> Any:
            refused = _guard(worker, request, s.protect_metrics)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            return self.json(worker.telemetry.dashboard())

    ingest = make_aiohttp_view(IngestHandler.from_settings(s, worker.ingest))

    @app.page("/events")  # type: ignore[untyped-decorator,unused-ignore]
    class Events(faust.web.View):
        async def post(self, request: Any) -> Any:
            return await ingest(request)

    @app.page("/admin/reload")  # type: ignore[untyped-decorator,unused-ignore]
    class Reload(faust.web.View):
        async def post(self, request: Any) -> Any:
            refused = _guard(worker, request, True)
            if refused is not None:
                return self.json(refused[1], status=refused[0])
            outcome = await worker.watcher.reload()
            return self.json(outcome.as_dict(), status=200 if outcome.ok else 422)

    return app, worker


def run(options: WorkerOptions, *, loglevel: str = "INFO") -> int:
    """Run the worker until SIGTERM/SIGINT; returns the process exit code.

    The pack is checked before anything starts: an invalid pack at start-up is exit code 2.
    """
    if options.pack is None:
        try:
            pack = load_pack(options.settings.rules_path)
        except RulePackError as exc:
            logging.basicConfig(level=logging.INFO)
            errors = [i.render() for i in exc.issues if i.severity == "error"] or [str(exc)]
            log.error("rule pack at %s rejected; not starting:\n%s",
                      options.settings.rules_path, "\n".join(errors))
            return 2
        options = replace(options, pack=pack)
    exit_code = [0]
    app, _ = create_app(options, exit_code)
    fworker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        fworker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
        return code or exit_code[0]
    return exit_code[0]
