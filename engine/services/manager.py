"""Bring the local Kafka + Redis (and, on request, a Redis Cluster) up, down, report their
state, and create topics.

Everything here is idempotent: ``up`` on running services only checks that they answer,
``down`` on stopped services does nothing, ``ensure_topics`` tolerates existing topics.
Concurrent ``up``/``down`` calls (parallel test sessions, two shells) serialise on a file lock.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.services import ServicesError, port_open
from engine.services import kafka as kafka_svc
from engine.services import redis as redis_svc
from engine.services.kafka_sasl import SaslPlain
from engine.services.redis_cluster import CLUSTER_SIZE, NodeState, RedisCluster

__all__ = [
    "Connection",
    "DownResult",
    "ServiceState",
    "ServicesSettings",
    "ServicesStatus",
    "UpResult",
    "down",
    "ensure_topics",
    "status",
    "up",
]

Reporter = Callable[[str], None]


def _default_services_dir() -> Path:
    """``<repo>/.tact/services`` when running from a checkout, else ``./.tact/services``."""
    repo = Path(__file__).resolve().parents[2]
    root = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return root / ".tact" / "services"


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "tact"


class ServicesSettings(BaseSettings):
    """Where and how the services run. Every field reads ``TACT_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="TACT_", extra="ignore")

    kafka_version: str = kafka_svc.DEFAULT_KAFKA_VERSION
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    #: An extra SASL_PLAINTEXT listener on this port (off when unset); PLAINTEXT stays as is.
    kafka_sasl_port: int | None = Field(default=None, ge=1, le=65535)
    kafka_sasl_username: str = "tact"
    kafka_sasl_password: SecretStr = SecretStr("tact-dev-secret")
    redis_port: int = Field(default=6379, ge=1, le=65535)
    #: Also run a 3-master Redis Cluster on ``redis_cluster_port`` and the next two ports
    #: (cluster bus on each port + 10000).
    redis_cluster: bool = False
    redis_cluster_port: int = Field(default=7000, ge=1, le=65535 - 10000 - (CLUSTER_SIZE - 1))
    services_dir: Path = Field(default_factory=_default_services_dir)
    services_cache: Path = Field(default_factory=_default_cache_dir)

    def kafka_sasl(self) -> SaslPlain | None:
        if self.kafka_sasl_port is None:
            return None
        return SaslPlain(
            port=self.kafka_sasl_port,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password.get_secret_value(),
        )

    def kafka_node(self, libs: Path | None = None) -> kafka_svc.KafkaNode:
        if libs is None:
            libs = self.services_cache / "kafka" / self.kafka_version / "libs"
        return kafka_svc.KafkaNode(
            home=self.services_dir / "kafka",
            libs=libs,
            version=self.kafka_version,
            port=self.kafka_port,
            controller_port=self.kafka_controller_port,
            heap=self.kafka_heap,
            sasl=self.kafka_sasl(),
        )

    def redis_node(self) -> redis_svc.RedisNode:
        return redis_svc.RedisNode(home=self.services_dir / "redis", port=self.redis_port)

    def redis_cluster_nodes(self) -> RedisCluster:
        home = self.services_dir / "redis-cluster"
        return RedisCluster(home=home, first_port=self.redis_cluster_port)

    def connection(self) -> Connection:
        sasl_port = self.kafka_sasl_port
        return Connection(
            bootstrap_servers=f"{kafka_svc.HOST}:{self.kafka_port}",
            redis_url=f"redis://{redis_svc.HOST}:{self.redis_port}/0",
            kafka_sasl_bootstrap=None if sasl_port is None else f"{kafka_svc.HOST}:{sasl_port}",
            redis_cluster_url=self.redis_cluster_nodes().url if self.redis_cluster else None,
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """What clients need to reach the services."""

    bootstrap_servers: str
    redis_url: str
    #: The SASL/PLAIN listener (``security_protocol="SASL_PLAINTEXT"``), if configured.
    kafka_sasl_bootstrap: str | None = None
    #: A seed URL of the Redis Cluster, if configured.
    redis_cluster_url: str | None = None


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One service: our process (if any) and whether the address answers."""

    name: str
    address: str
    pid: int | None
    answering: bool

    @property
    def label(self) -> str:
        if self.answering:
            return "running" if self.pid is not None else "running (not managed by tact)"
        return "starting / not answering" if self.pid is not None else "stopped"


@dataclass(frozen=True, slots=True)
class ServicesStatus:
    kafka: ServiceState
    redis: ServiceState
    connection: Connection
    kafka_version: str
    #: The SASL listener's port accepting connections (when configured).
    kafka_sasl: ServiceState | None = None
    #: The cluster's nodes (when configured or running); ok when each says cluster_state:ok.
    redis_cluster: tuple[NodeState, ...] = ()

    @property
    def ok(self) -> bool:
        extras = self.kafka_sasl is None or self.kafka_sasl.answering
        return (
            self.kafka.answering
            and self.redis.answering
            and extras
            and all(node.ok for node in self.redis_cluster)
        )

    @property
    def all_ours(self) -> bool:
        """Every service runs from a process we started (not just something on the port)."""
        pids = [self.kafka.pid, self.redis.pid, *(node.pid for node in self.redis_cluster)]
        return all(pid is not None for pid in pids)


@dataclass(slots=True)
class UpResult:
    status: ServicesStatus
    already_running: bool
    resolved_jars: bool = False
    installed_redis: bool = False
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DownResult:
    kafka_was_running: bool
    redis_was_running: bool
    redis_cluster_was_running: bool = False


def _noop(_: str) -> None:
    return None


@contextmanager
def _locked(settings: ServicesSettings) -> Iterator[None]:
    settings.services_dir.mkdir(parents=True, exist_ok=True)
    with (settings.services_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def status(settings: ServicesSettings | None = None) -> ServicesStatus:
    """The current state of both services (each is probed with a real request)."""
    settings = settings or ServicesSettings()
    conn = settings.connection()
    kafka = settings.kafka_node()
    redis = settings.redis_node()
    cluster = settings.redis_cluster_nodes()
    show_cluster = settings.redis_cluster or cluster.any_running()
    sasl = conn.kafka_sasl_bootstrap
    return ServicesStatus(
        kafka=ServiceState(
            name="kafka",
            address=conn.bootstrap_servers,
            pid=kafka.pid(),
            answering=kafka_svc.probe(conn.bootstrap_servers),
        ),
        redis=ServiceState(
            name="redis",
            address=conn.redis_url,
            pid=redis.pid(),
            answering=redis_svc.ping(conn.redis_url),
        ),
        connection=conn,
        kafka_version=settings.kafka_version,
        kafka_sasl=None
        if sasl is None
        else ServiceState(
            name="kafka sasl",
            address=sasl,
            pid=kafka.pid(),
            answering=port_open(kafka_svc.HOST, int(sasl.rpartition(":")[2])),
        ),
        redis_cluster=cluster.states() if show_cluster else (),
    )


def up(
    settings: ServicesSettings | None = None,
    *,
    fresh: bool = False,
    timeout: float = 120.0,
    report: Reporter = _noop,
) -> UpResult:
    """Start Kafka and Redis unless they already run and answer; wait until both answer.

    With ``settings.redis_cluster`` also the Redis Cluster (created on first start), with
    ``settings.kafka_sasl_port`` the broker's SASL/PLAIN listener.

    ``fresh`` stops both and deletes their data first. ``timeout`` bounds the wait for the
    services to answer (fetching the Kafka jars on a cold cache is not counted against it).
    """
    settings = settings or ServicesSettings()
    t0 = time.monotonic()
    with _locked(settings):
        if not fresh:
            current = status(settings)
            if current.ok and current.all_ours:
                return UpResult(current, True, timings={"total": time.monotonic() - t0})
        result = _start(settings, fresh=fresh, timeout=timeout, report=report)
    result.timings["total"] = time.monotonic() - t0
    return result


def _start(
    settings: ServicesSettings, *, fresh: bool, timeout: float, report: Reporter
) -> UpResult:
    timings: dict[str, float] = {}
    redis = settings.redis_node()
    if fresh:
        report("stopping services and wiping their data (--fresh)")
        _down_unlocked(settings, timeout=30.0)
        settings.kafka_node().wipe()
        redis.wipe()
        settings.redis_cluster_nodes().wipe()

    mark = time.monotonic()
    report("checking redis-server")
    server, installed = redis_svc.ensure_redis_server()
    timings["redis_install"] = time.monotonic() - mark
    if redis.pid() is None:
        report(f"starting Redis on {redis.url}")
        redis.write_config()
        redis.start(server)

    mark = time.monotonic()
    report(f"resolving Kafka {settings.kafka_version} jars (Maven)")
    libs, resolved = kafka_svc.resolve_jars(settings.services_cache, settings.kafka_version)
    timings["kafka_resolve"] = time.monotonic() - mark
    kafka = settings.kafka_node(libs)
    kafka_pid = kafka.pid()
    if kafka_pid is None:
        kafka.home.mkdir(parents=True, exist_ok=True)
        kafka.write_config()
        if not kafka.is_formatted():
            mark = time.monotonic()
            report("formatting KRaft storage")
            kafka.format_storage()
            timings["kafka_format"] = time.monotonic() - mark
        report(f"starting Kafka {settings.kafka_version} on {kafka.bootstrap}")
        kafka_pid = kafka.start()
    elif kafka.sasl is not None and not port_open(kafka_svc.HOST, kafka.sasl.port):
        raise ServicesError(
            f"Kafka runs without the SASL listener on port {kafka.sasl.port}; it is added "
            "only at start: `tact services down`, then `up` with --kafka-sasl-port"
        )

    mark = time.monotonic()
    report("waiting for Redis to answer PING")
    redis.wait_ready(timeout)
    if settings.redis_cluster:
        cluster = settings.redis_cluster_nodes()
        report(f"starting the Redis Cluster on {cluster.url} (ports {cluster.ports})")
        if cluster.start(server, max(timeout - (time.monotonic() - mark), 1.0)):
            report("created the Redis Cluster (redis-cli --cluster create)")
    report("waiting for Kafka to answer a metadata request")
    kafka.wait_ready(kafka_pid, max(timeout - (time.monotonic() - mark), 1.0))
    timings["wait_ready"] = time.monotonic() - mark
    return UpResult(
        status=status(settings),
        already_running=False,
        resolved_jars=resolved,
        installed_redis=installed,
        timings=timings,
    )


def _down_unlocked(settings: ServicesSettings, timeout: float) -> DownResult:
    kafka_was = settings.kafka_node().stop(timeout)
    redis_was = settings.redis_node().stop(timeout)
    cluster_was = settings.redis_cluster_nodes().stop(timeout)
    return DownResult(kafka_was, redis_was, redis_cluster_was_running=cluster_was)


def down(settings: ServicesSettings | None = None, *, timeout: float = 30.0) -> DownResult:
    """Stop every service, the Redis Cluster's nodes included (SIGTERM, wait ``timeout`` s,
    then SIGKILL). A no-op if stopped."""
    settings = settings or ServicesSettings()
    with _locked(settings):
        return _down_unlocked(settings, timeout)


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics ``{name: partitions}`` that do not exist yet on the unsecured broker
    at ``bootstrap``; returns those created. Raises :class:`ServicesError` if it cannot.

    The local services' shorthand for :func:`connectors.kafka.admin.ensure_topics`, which
    takes the settings (SASL/SSL included) and per-topic configs.
    """
    from connectors.kafka import clients
    from connectors.kafka.admin import KafkaTopicsError, TopicSpec
    from connectors.kafka.admin import ensure_topics as ensure

    try:
        specs = {name: TopicSpec(partitions, replication_factor=replication_factor)
                 for name, partitions in topics.items()}
        return ensure(clients.plaintext(bootstrap), specs, timeout=timeout)
    except KafkaTopicsError as exc:
        raise ServicesError(str(exc)) from exc
