"""The Faust app of ``tact run``: lifecycle, signals, web server and timers.

Faust's own Kafka consumer and producer are switched off (``enable_kafka=False`` in the boot
strategy): a plain Faust agent moves events one at a time through its stream machinery,
about 10k events/s on the project's machine, where aiokafka's ``getmany`` reads 600k+/s
(``docs/worker.md``). Consumption is the :class:`~engine.worker.batch.BatchConsumer` run by
a Faust service; Faust keeps what it is good at:

* the worker process: start-up, SIGTERM/SIGINT, an orderly stop (the batch in flight
  finishes and commits, then the consumer leaves the group and the producers close);
* the web server on ``TACT_WEB_PORT`` (6066), its views in :mod:`engine.worker.web`;
* timers: the follow-up timer (``followup_interval_s``), the rules watcher
  (``reload_interval_s``) and the telemetry refresh (``telemetry_interval_s``).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import faust
from faust.app.base import BootStrategy
from mode import Service

from engine.errors import RulePackError
from engine.pack.loader import load_pack
from engine.worker.runtime import StreamWorker, WorkerOptions
from engine.worker.web import add_views

log = logging.getLogger("tact.worker")


class _Boot(BootStrategy):
    """Web server, sensors and timers; no Faust consumer, producer, agents' topics or tables."""

    enable_kafka = False


class TactApp(faust.App):
    BootStrategy = _Boot


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

    add_views(app, worker)
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
