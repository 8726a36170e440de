"""`tact services up|down|status`: local Kafka (KRaft) and Redis on loopback, no Docker.

Options left out fall back to the ``TACT_*`` environment (:class:`manager.ServicesSettings`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from engine.services import ServicesError, manager

app = typer.Typer(
    name="services",
    help="Run a real Apache Kafka (KRaft) and Redis on 127.0.0.1 for development and tests.",
    no_args_is_help=True,
)

_console = Console()
_errors = Console(stderr=True)

KafkaPort = Annotated[
    int | None,
    typer.Option("--kafka-port", help="Kafka listener port [env TACT_KAFKA_PORT; 9092]."),
]
ControllerPort = Annotated[
    int | None,
    typer.Option(
        "--kafka-controller-port",
        help="KRaft controller port [env TACT_KAFKA_CONTROLLER_PORT; 9093].",
    ),
]
RedisPort = Annotated[
    int | None,
    typer.Option("--redis-port", help="Redis port [env TACT_REDIS_PORT; 6379]."),
]
SaslPort = Annotated[
    int | None,
    typer.Option(
        "--kafka-sasl-port",
        help="Also a SASL/PLAIN listener on this port, user/password from "
        "TACT_KAFKA_SASL_USERNAME/TACT_KAFKA_SASL_PASSWORD [env TACT_KAFKA_SASL_PORT; off].",
    ),
]
RedisCluster = Annotated[
    bool | None,
    typer.Option(
        "--redis-cluster/--no-redis-cluster",
        help="Also a 3-master Redis Cluster on loopback [env TACT_REDIS_CLUSTER; off].",
        show_default=False,
    ),
]
RedisClusterPort = Annotated[
    int | None,
    typer.Option(
        "--redis-cluster-port",
        help="First of the cluster's 3 consecutive ports [env TACT_REDIS_CLUSTER_PORT; 7000].",
    ),
]


def _settings(**options: Any) -> manager.ServicesSettings:
    return manager.ServicesSettings(**{k: v for k, v in options.items() if v is not None})


def _print_status(st: manager.ServicesStatus) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("service")
    table.add_column("state")
    table.add_column("pid", justify="right")
    table.add_column("address")
    services = [st.kafka, *([st.kafka_sasl] if st.kafka_sasl else []), st.redis]
    for svc in services:
        style = "green" if svc.answering else "red"
        name = f"kafka {st.kafka_version}" if svc.name == "kafka" else svc.name
        pid = str(svc.pid) if svc.pid is not None else "-"
        table.add_row(name, f"[{style}]{svc.label}[/]", pid, svc.address)
    for node in st.redis_cluster:
        style = "green" if node.ok else "red"
        state = (node.info or {}).get("cluster_state", "not answering")
        label = f"cluster_state:{state}" if node.pid is not None else "stopped"
        pid = str(node.pid) if node.pid is not None else "-"
        table.add_row("redis cluster", f"[{style}]{label}[/]", pid, node.address)
    _console.print(table)


def _print_connection(conn: manager.Connection) -> None:
    _console.print(f"KAFKA_BOOTSTRAP_SERVERS={conn.bootstrap_servers}", highlight=False)
    if conn.kafka_sasl_bootstrap is not None:
        _console.print(f"KAFKA_SASL_BOOTSTRAP_SERVERS={conn.kafka_sasl_bootstrap}", highlight=False)
    _console.print(f"REDIS_URL={conn.redis_url}", highlight=False)
    if conn.redis_cluster_url is not None:
        _console.print(f"REDIS_CLUSTER_URL={conn.redis_cluster_url}", highlight=False)


@app.command()
def up(
    kafka_port: KafkaPort = None,
    kafka_controller_port: ControllerPort = None,
    redis_port: RedisPort = None,
    kafka_sasl_port: SaslPort = None,
    redis_cluster: RedisCluster = None,
    redis_cluster_port: RedisClusterPort = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Stop and wipe Kafka and Redis data first.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for all to answer.")
    ] = 120.0,
) -> None:
    """Start Kafka and Redis (a no-op if they already run) and wait until both answer."""
    try:
        settings = _settings(
            kafka_port=kafka_port,
            kafka_controller_port=kafka_controller_port,
            redis_port=redis_port,
            kafka_sasl_port=kafka_sasl_port,
            redis_cluster=redis_cluster,
            redis_cluster_port=redis_cluster_port,
        )
        with _console.status("starting services") as spinner:

            def report(message: str) -> None:
                spinner.update(message)
                _console.log(message)

            result = manager.up(settings, fresh=fresh, timeout=timeout, report=report)
    except ServicesError as exc:
        _errors.print(f"[red]services up failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    total = result.timings.get("total", 0.0)
    if result.already_running:
        _console.print(f"[green]already running[/] (checked in {total:.1f}s)")
    else:
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items() if k != "total")
        _console.print(f"[green]services up[/] in {total:.1f}s ({steps})")
    _print_status(result.status)
    _print_connection(result.status.connection)


@app.command()
def down(
    kafka_port: KafkaPort = None,
    kafka_controller_port: ControllerPort = None,
    redis_port: RedisPort = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = 30.0,
) -> None:
    """Stop Kafka, Redis and the Redis Cluster's nodes (a no-op if they are not running)."""
    settings = _settings(
        kafka_port=kafka_port, kafka_controller_port=kafka_controller_port, redis_port=redis_port
    )
    try:
        with _console.status("stopping services"):
            result = manager.down(settings, timeout=timeout)
    except ServicesError as exc:
        _errors.print(f"[red]services down failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    for name, was in (
        ("kafka", result.kafka_was_running),
        ("redis", result.redis_was_running),
        ("redis cluster", result.redis_cluster_was_running),
    ):
        _console.print(f"{name}: {'stopped' if was else 'was not running'}")


@app.command()
def status(
    kafka_port: KafkaPort = None,
    kafka_controller_port: ControllerPort = None,
    redis_port: RedisPort = None,
    kafka_sasl_port: SaslPort = None,
    redis_cluster: RedisCluster = None,
    redis_cluster_port: RedisClusterPort = None,
) -> None:
    """Show whether the services run and answer; exit 0 if all do, 1 otherwise."""
    try:
        settings = _settings(
            kafka_port=kafka_port,
            kafka_controller_port=kafka_controller_port,
            redis_port=redis_port,
            kafka_sasl_port=kafka_sasl_port,
            redis_cluster=redis_cluster,
            redis_cluster_port=redis_cluster_port,
        )
        st = manager.status(settings)
    except ServicesError as exc:
        _errors.print(f"[red]services status failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    _print_status(st)
    if st.ok:
        _print_connection(st.connection)
    raise typer.Exit(0 if st.ok else 1)
