"""Apache Kafka in KRaft mode from its own jars: configure, format, start, probe, stop.

The jars are resolved by :mod:`engine.services.kafka_jars` (re-exported here), with the
matching slf4j binding; here that backend is configured to write the broker's log to a
rolling file instead of stdout.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.services import (
    ServicesError,
    pid_alive,
    port_open,
    running_pid,
    tail_files,
    terminate,
)
from engine.services.kafka_jars import major_version, render_pom, resolve_jars
from engine.services.kafka_sasl import LISTENER as SASL_LISTENER
from engine.services.kafka_sasl import SaslPlain

__all__ = [
    "DEFAULT_KAFKA_VERSION", "HOST", "PROCESS_MARKER", "KafkaNode", "probe", "render_pom",
    "resolve_jars",
]

#: Pinned broker version; see docs/services.md for why this one.
DEFAULT_KAFKA_VERSION = "4.1.2"
HOST = "127.0.0.1"
#: Main class; also how we recognise our broker in ``/proc/<pid>/cmdline``.
PROCESS_MARKER = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

# A light JVM for a small (2-core) dev box; G1 with short pauses, as Kafka's own scripts use.
_JVM_OPTS = (
    *("-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35"),
    *("-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"),
)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's Uuid)."""
    while True:
        raw = uuid.uuid4().bytes
        text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if not text.startswith("-"):
            return text


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` from PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ServicesError("Java 17+ is required to run Kafka; `java` was not found")
    return found


@contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    """Silence kafka-python's connection warnings while probing a broker that may be down."""
    logger = logging.getLogger("kafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def probe(bootstrap: str, timeout: float = 5.0) -> bool:
    """A real metadata round trip: True if a broker answers and lists at least one broker."""
    host, _, port = bootstrap.rpartition(":")
    if not port_open(host, int(port)):
        return False
    from kafka import KafkaAdminClient

    with _quiet_kafka_logs():
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap,
                client_id="tact-services-probe",
                request_timeout_ms=int(timeout * 1000),
            )
        except Exception:
            return False
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except Exception:
            return False
        finally:
            admin.close()


@dataclass(frozen=True, slots=True)
class KafkaNode:
    """One combined broker+controller node, with its files under ``home``."""

    home: Path
    libs: Path
    version: str
    port: int
    controller_port: int
    heap: str = "512m"
    #: An extra SASL/PLAIN listener (opt-in); the PLAINTEXT listener stays as it is.
    sasl: SaslPlain | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "kafka.out"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    def pid(self) -> int | None:
        """The broker's pid if it is running (and is ours)."""
        return running_pid(self.pid_file, PROCESS_MARKER)

    def write_config(self) -> None:
        """(Re)write server.properties and the logging config; ports may change between runs."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        listeners = f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}"
        advertised = f"PLAINTEXT://{HOST}:{self.port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.sasl is not None:
            listeners += f",{SASL_LISTENER}://{HOST}:{self.sasl.port}"
            advertised += f",{SASL_LISTENER}://{HOST}:{self.sasl.port}"
            protocols += f",{SASL_LISTENER}:{SASL_LISTENER}"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": listeners,
            "advertised.listeners": advertised,
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": protocols,
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "auto.create.topics.enable": "true",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
            "background.threads": "4",
            "log.retention.hours": "24",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        }
        if self.sasl is not None:
            props.update(self.sasl.broker_properties())
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        # Owner-only: with a SASL listener the file holds its password.
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("# Generated by `tact services`.\n" + text)
        self.properties_file.chmod(0o600)
        self._logging_file().write_text(self._logging_config(), encoding="utf-8")

    def _logging_file(self) -> Path:
        name = "log4j2.properties" if major_version(self.version) >= 4 else "log4j.properties"
        return self.home / name

    def _logging_config(self) -> str:
        log = self.server_log
        if major_version(self.version) >= 4:
            lines = [
                "status = warn",
                "appender.file.type = RollingFile",
                "appender.file.name = FILE",
                f"appender.file.fileName = {log}",
                f"appender.file.filePattern = {log}.%i",
                "appender.file.layout.type = PatternLayout",
                "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                "appender.file.policies.type = Policies",
                "appender.file.policies.size.type = SizeBasedTriggeringPolicy",
                "appender.file.policies.size.size = 20MB",
                "appender.file.strategy.type = DefaultRolloverStrategy",
                "appender.file.strategy.max = 3",
                "rootLogger.level = INFO",
                "rootLogger.appenderRef.file.ref = FILE",
            ]
        else:
            lines = [
                "log4j.rootLogger=INFO, file",
                "log4j.appender.file=org.apache.log4j.RollingFileAppender",
                f"log4j.appender.file.File={log}",
                "log4j.appender.file.MaxFileSize=20MB",
                "log4j.appender.file.MaxBackupIndex=3",
                "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
            ]
        return "\n".join(lines) + "\n"

    def _java_cmd(self, main: str, *args: str, heap: str) -> list[str]:
        logging_file = self._logging_file()
        if major_version(self.version) >= 4:
            # No log4j2 shutdown hook: Kafka logs while exiting, which made log4j2 warn on stdout.
            log_opts = [
                f"-Dlog4j2.configurationFile={logging_file}",
                "-Dlog4j2.shutdownHookEnabled=false",
            ]
        else:
            log_opts = [f"-Dlog4j.configuration=file:{logging_file}"]
        jvm = [java_executable(), f"-Xmx{heap}", *_JVM_OPTS, *log_opts]
        jvm += [f"-Dkafka.logs.dir={self.logs_dir}", "-cp", f"{self.libs}/*"]
        return [*jvm, main, *args]

    def is_formatted(self) -> bool:
        return (self.data_dir / "meta.properties").is_file()

    def format_storage(self) -> None:
        """Format the KRaft log dir once (a new cluster id); a no-op if already formatted."""
        if self.is_formatted():
            return
        args = ("format", "--cluster-id", new_cluster_id(), "--config", str(self.properties_file))
        cmd = self._java_cmd(STORAGE_TOOL, *args, "--ignore-formatted", heap="256m")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ServicesError(f"formatting Kafka storage failed:\n{tail}")

    def start(self) -> int:
        """Start the broker detached (own session, output to a log file); returns its pid."""
        ports = (self.port, self.controller_port, *((self.sasl.port,) if self.sasl else ()))
        for port in ports:
            if port_open(HOST, port):
                raise ServicesError(
                    f"port {HOST}:{port} is already in use by another process; stop it or choose "
                    "other ports (--kafka-port / --kafka-controller-port / --kafka-sasl-port)"
                )
        cmd = self._java_cmd(PROCESS_MARKER, str(self.properties_file), heap=self.heap)
        with self.stdout_log.open("ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
                close_fds=True,
            )
        self.pid_file.write_text(f"{proc.pid}\n", encoding="ascii")
        return proc.pid

    def wait_ready(self, pid: int, timeout: float) -> None:
        """Block until the broker answers a metadata request, or raise (with the log's tail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid, PROCESS_MARKER):
                raise ServicesError(f"Kafka exited during startup.\n{self.log_tail()}")
            if probe(self.bootstrap, timeout=3.0):
                return
            time.sleep(0.25)
        raise ServicesError(f"Kafka did not answer within {timeout:.0f}s.\n{self.log_tail()}")

    def stop(self, timeout: float) -> bool:
        """Stop the broker if running (SIGTERM, then SIGKILL); True if it was running."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, PROCESS_MARKER, timeout)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None

    def wipe(self) -> None:
        """Delete the broker's data (topics, offsets, cluster id). Only while it is stopped."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's logs, for error messages."""
        return tail_files((self.stdout_log, self.server_log), lines) or "(no Kafka log output)"
