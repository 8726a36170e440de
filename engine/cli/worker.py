"""`tact run`: the streaming worker (Kafka in, decisions out). Parses, configures, delegates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from engine.config import TactSettings

Rules = Annotated[
    Path | None,
    typer.Option("--rules", help="Rule pack directory or file (env TACT_RULES_PATH)."),
]
Brokers = Annotated[
    str | None,
    typer.Option("--brokers", help="Kafka bootstrap servers, comma-separated "
                                   "(env TACT_KAFKA_BROKERS)."),
]
RedisUrl = Annotated[
    str | None,
    typer.Option("--redis-url", help="Redis URL (env TACT_REDIS_URL).", show_default=False),
]
WebPort = Annotated[
    int | None,
    typer.Option("--web-port", help="Health/admin HTTP port (env TACT_WEB_PORT; default 6066)."),
]
WorkerId = Annotated[
    str | None,
    typer.Option("--worker-id", envvar="TACT_WORKER_ID",
                 help="Stable, unique name of this worker: its Kafka transactional id and "
                      "group instance id. Restart a crashed worker under the same id "
                      "(default: the host name)."),
]
Prefix = Annotated[
    str, typer.Option("--redis-prefix", envvar="TACT_REDIS_PREFIX", help="Redis key prefix.")
]
WallClock = Annotated[
    bool,
    typer.Option("--wall-clock/--no-wall-clock",
                 help="Fire due follow-ups by the wall clock (off: only tick records appended by "
                      "a replay or a test move the clock)."),
]
CreateTopics = Annotated[
    bool,
    typer.Option("--create-topics/--no-create-topics",
                 help="Create missing topics at start-up (off: a missing topic stops the worker "
                      "at start, named; for clusters where topics are provisioned)."),
]
LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
Processes = Annotated[
    int,
    typer.Option("--processes", min=1,
                 help="Worker processes on this host, in one consumer group under one "
                      "supervisor that restarts them and serves the one web port (the "
                      "children are <worker id>-0..N-1)."),
]


def run(
    rules: Rules = None,
    brokers: Brokers = None,
    redis_url: RedisUrl = None,
    web_port: WebPort = None,
    worker_id: WorkerId = None,
    redis_prefix: Prefix = "tact:",
    wall_clock: WallClock = True,
    create_topics: CreateTopics = True,
    log_level: LogLevel = "INFO",
    processes: Processes = 1,
) -> None:
    """Run the streaming worker until SIGTERM/SIGINT (creates missing topics unless told not to)."""
    from engine.config import TactSettings
    from engine.worker.app import run as run_worker
    from engine.worker.runtime import WorkerOptions, default_worker_id

    overrides: dict[str, Any] = {
        "rules_path": rules,
        "kafka_brokers": brokers,
        "redis_url": redis_url,
        "web_port": web_port,
    }
    settings = TactSettings(**{k: v for k, v in overrides.items() if v is not None})
    if processes > 1:
        raise typer.Exit(_run_host(settings, processes, worker_id or default_worker_id(),
                                   redis_prefix, wall_clock, create_topics, log_level))
    options = WorkerOptions(
        settings=settings,
        worker_id=worker_id or default_worker_id(),
        redis_prefix=redis_prefix,
        wall_clock_ticks=wall_clock,
        create_topics=create_topics,
    )
    code = run_worker(options, loglevel=log_level.upper())
    raise typer.Exit(code)


def _run_host(settings: TactSettings, processes: int, worker_id: str, redis_prefix: str,
              wall_clock: bool, create_topics: bool, log_level: str) -> int:
    """The supervisor of ``processes`` workers; the pack is checked once, before any starts."""
    import logging

    from engine.errors import RulePackError
    from engine.pack.loader import load_pack
    from engine.worker.supervisor import HostOptions, run_host

    logging.basicConfig(level=log_level.upper(),
                        format="[%(asctime)s] [%(process)d] %(levelname)s %(name)s: %(message)s")
    try:
        load_pack(settings.rules_path)
    except RulePackError as exc:
        errors = [i.render() for i in exc.issues if i.severity == "error"] or [str(exc)]
        logging.getLogger("tact.supervisor").error(
            "rule pack at %s rejected; not starting:\n%s", settings.rules_path,
            "\n".join(errors))
        return 2
    # the children get the resolved settings through the environment, the flags as flags
    env = {"TACT_RULES_PATH": str(settings.rules_path),
           "TACT_KAFKA_BROKERS": settings.kafka_brokers,
           "TACT_REDIS_URL": settings.redis_url.get_secret_value()}
    args = ["--redis-prefix", redis_prefix, "--log-level", log_level,
            "--wall-clock" if wall_clock else "--no-wall-clock",
            "--create-topics" if create_topics else "--no-create-topics"]
    return run_host(HostOptions(settings=settings, processes=processes, worker_id=worker_id,
                                child_args=args, child_env=env))


def register(app: typer.Typer) -> None:
    app.command("run")(run)
