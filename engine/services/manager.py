"""Bring the local Kafka + Redis up, down, report their state, and create topics.

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

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.services import ServicesError
from engine.services import kafka as kafka_svc
from engine.services import redis as redis_svc

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
# Kafka error code TOPIC_ALREADY_EXISTS.
_TOPIC_ALREADY_EXISTS = 36


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
    redis_port: int = Field(default=6379, ge=1, le=65535)
    services_dir: Path = Field(default_factory=_default_services_dir)
    services_cache: Path = Field(default_factory=_default_cache_dir)

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
        )

    def redis_node(self) -> redis_svc.RedisNode:
        return redis_svc.RedisNode(home=self.services_dir / "redis", port=self.redis_port)

    def connection(self) -> Connection:
        return Connection(
            bootstrap_servers=f"{kafka_svc.HOST}:{self.kafka_port}",
            redis_url=f"redis://{redis_svc.HOST}:{self.redis_port}/0",
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """What clients need to reach the services."""

    bootstrap_servers: str
    redis_url: str


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

    @property
    def ok(self) -> bool:
        return self.kafka.answering and self.redis.answering


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
    )


def up(
    settings: ServicesSettings | None = None,
    *,
    fresh: bool = False,
    timeout: float = 120.0,
    report: Reporter = _noop,
) -> UpResult:
    """Start Kafka and Redis unless they already run and answer; wait until both answer.

    ``fresh`` stops both and deletes their data first. ``timeout`` bounds the wait for the
    services to answer (fetching the Kafka jars on a cold cache is not counted against it).
    """
    settings = settings or ServicesSettings()
    t0 = time.monotonic()
    with _locked(settings):
        if not fresh:
            current = status(settings)
            if current.ok and current.kafka.pid is not None and current.redis.pid is not None:
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

    mark = time.monotonic()
    report("waiting for Redis to answer PING")
    redis.wait_ready(timeout)
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
    return DownResult(kafka_was_running=kafka_was, redis_was_running=redis_was)


def down(settings: ServicesSettings | None = None, *, timeout: float = 30.0) -> DownResult:
    """Stop both services (SIGTERM, wait ``timeout`` s, then SIGKILL). A no-op if stopped."""
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
    """Create the topics ``{name: partitions}`` that do not exist yet; returns those created.

    Existing topics are left alone (their partition count is not changed). Waits until every
    requested topic has a leader for each partition.
    """
    if not topics:
        return []
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    timeout_ms = int(timeout * 1000)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="tact-ensure-topics",
            request_timeout_ms=timeout_ms,
        )
    except KafkaError as exc:
        raise ServicesError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        spec = {
            name: {"num_partitions": partitions, "replication_factor": replication_factor}
            for name, partitions in topics.items()
        }
        response = admin.create_topics(spec, timeout_ms=timeout_ms, raise_errors=False)
        created: list[str] = []
        failures: list[str] = []
        for entry in response.get("topics", []):
            code = int(entry.get("error_code", 0))
            if code == 0:
                created.append(str(entry["name"]))
            elif code != _TOPIC_ALREADY_EXISTS:
                failures.append(f"{entry['name']}: {entry.get('error_message') or code}")
        if failures:
            raise ServicesError("could not create topics: " + "; ".join(failures))
        admin.wait_for_topics(list(topics), timeout_ms=timeout_ms)
        return sorted(created)
    except KafkaError as exc:
        raise ServicesError(f"creating topics on {bootstrap} failed: {exc}") from exc
    finally:
        admin.close()
