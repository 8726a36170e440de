"""A private `tact services` stack on its own dir and ports: Redis durability, the Redis
Cluster and the broker's SASL/PLAIN listener, against real processes.

Never the shared services on 9092/6379: everything here is started, killed and stopped in a
temporary services dir on free ports. One broker for the module (~10 s to start); the test
that stops the whole stack runs last.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError
from typer.testing import CliRunner

from engine.cli.services import app as services_cli
from engine.services import ServicesError, manager, pid_alive
from engine.services import redis as redis_svc
from tests.integration.fault_stack import PrivateStack
from tests.integration.worker_proc import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SASL_USER = "it-user"
SASL_PASSWORD = "it-" + uuid.uuid4().hex


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_base() -> int:
    """A first port whose 3 ports and their cluster-bus ports (+10000) are all free; below the
    kernel's ephemeral range, so no client connection takes one meanwhile."""
    for _ in range(200):
        base = random.randrange(12000, 19000)
        if all(_bindable(p) and _bindable(p + 10000) for p in range(base, base + 3)):
            return base
    raise RuntimeError("no free port range for the Redis Cluster")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[manager.ServicesSettings]:
    private = PrivateStack(tmp_path_factory.mktemp("services"), kafka_sasl_port=free_port(),
                           kafka_sasl_username=SASL_USER, kafka_sasl_password=SASL_PASSWORD,
                           redis_cluster=True, redis_cluster_port=_free_cluster_base())
    with private.running() as settings:
        yield settings


def _kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def _cluster_client(settings: manager.ServicesSettings) -> redis.RedisCluster:
    url = settings.connection().redis_cluster_url
    assert url is not None
    return redis.RedisCluster.from_url(url)


# --- Redis durability ---------------------------------------------------------------------


def test_redis_keeps_an_acknowledged_write_through_kill_9_and_up(
    stack: manager.ServicesSettings,
) -> None:
    client = redis.Redis.from_url(stack.connection().redis_url)
    key = f"it-durable:{uuid.uuid4().hex}"
    try:
        client.set(key, "survives")
        pid = manager.status(stack).redis.pid
        assert pid is not None
        _kill9(pid)

        result = manager.up(stack, timeout=60.0)

        assert not result.already_running
        assert result.status.redis.pid not in (None, pid)
        assert client.get(key) == b"survives"
    finally:
        client.close()


# --- Redis Cluster --------------------------------------------------------------------------


def test_redis_cluster_is_three_masters_covering_every_slot(
    stack: manager.ServicesSettings,
) -> None:
    states = manager.status(stack).redis_cluster
    assert [s.address for s in states] == [
        f"127.0.0.1:{stack.redis_cluster_port + i}" for i in range(3)
    ]
    assert all(s.pid is not None and s.ok for s in states)
    for state in states:
        assert state.info is not None
        assert state.info["cluster_known_nodes"] == "3"
        assert state.info["cluster_slots_assigned"] == "16384"
        assert state.info["cluster_size"] == "3"  # masters serving slots

    client = _cluster_client(stack)
    try:
        keys = {f"it-cluster:{i}": str(i) for i in range(64)}
        for key, value in keys.items():
            client.set(key, value)
        owners = {client.get_node_from_key(key).port for key in keys}
        assert owners == {stack.redis_cluster_port + i for i in range(3)}
        assert {k: client.get(k) for k in keys} == {k: v.encode() for k, v in keys.items()}
    finally:
        client.close()


def test_up_with_a_running_cluster_is_a_noop(stack: manager.ServicesSettings) -> None:
    before = [s.pid for s in manager.status(stack).redis_cluster]
    started = time.monotonic()
    result = manager.up(stack)
    assert result.already_running
    assert time.monotonic() - started < 10
    assert [s.pid for s in result.status.redis_cluster] == before


def test_a_killed_cluster_node_comes_back_with_its_data_on_up(
    stack: manager.ServicesSettings,
) -> None:
    client = _cluster_client(stack)
    try:
        key = f"it-cluster-kill:{uuid.uuid4().hex}"
        client.set(key, "kept")
        port = client.get_node_from_key(key).port
    finally:
        client.close()
    victim = next(s for s in manager.status(stack).redis_cluster if s.address.endswith(f":{port}"))
    assert victim.pid is not None
    _kill9(victim.pid)
    assert not manager.status(stack).ok

    result = manager.up(stack, timeout=60.0)

    assert result.status.ok and all(s.ok for s in result.status.redis_cluster)
    node = redis.Redis(host="127.0.0.1", port=port)
    try:
        assert node.get(key) == b"kept"
    finally:
        node.close()


def test_status_cli_prints_the_cluster_url(stack: manager.ServicesSettings) -> None:
    env = {"TACT_SERVICES_DIR": str(stack.services_dir)}
    args = ["status", "--kafka-port", str(stack.kafka_port), "--redis-port", str(stack.redis_port)]
    args += ["--redis-cluster", "--redis-cluster-port", str(stack.redis_cluster_port)]
    args += ["--kafka-sasl-port", str(stack.kafka_sasl_port)]
    result = CliRunner().invoke(services_cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"REDIS_CLUSTER_URL=redis://127.0.0.1:{stack.redis_cluster_port}\n" in result.output
    assert f"KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:{stack.kafka_sasl_port}\n" in result.output
    assert result.output.count("cluster_state:ok") == 3


# --- Kafka SASL/PLAIN -----------------------------------------------------------------------


def _sasl(settings: manager.ServicesSettings, password: str) -> dict[str, object]:
    return {
        "bootstrap_servers": settings.connection().kafka_sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": SASL_USER,
        "sasl_plain_password": password,
    }


def _failed_authentications(settings: manager.ServicesSettings) -> int:
    """How many failed SASL authentications the broker has logged."""
    log = Path(settings.services_dir) / "kafka" / "logs" / "server.log"
    return log.read_text(encoding="utf-8", errors="replace").count("Failed authentication")


def _topic() -> str:
    return f"tact-it-sasl-{uuid.uuid4().hex[:10]}"


def test_kafka_python_works_through_sasl_with_the_password(
    stack: manager.ServicesSettings,
) -> None:
    topic = _topic()
    producer = KafkaProducer(acks="all", **_sasl(stack, SASL_PASSWORD))
    try:
        producer.send(topic, value=b"over-sasl").get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(
        topic,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        **_sasl(stack, SASL_PASSWORD),
    )
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                values.extend(r.value for r in records)
        assert values == [b"over-sasl"]
    finally:
        consumer.close()


def test_kafka_python_is_refused_with_a_wrong_password(stack: manager.ServicesSettings) -> None:
    failures = _failed_authentications(stack)
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(bootstrap_timeout_ms=3000, **_sasl(stack, SASL_PASSWORD + "x"))
    assert _failed_authentications(stack) > failures


async def test_aiokafka_works_through_sasl_with_the_password(
    stack: manager.ServicesSettings,
) -> None:
    topic = _topic()
    producer = AIOKafkaProducer(acks="all", **_sasl(stack, SASL_PASSWORD))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=b"aio-over-sasl")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        **_sasl(stack, SASL_PASSWORD),
    )
    await consumer.start()
    try:
        values: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while not values and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            values += [r.value for records in batches.values() for r in records]
        assert values == [b"aio-over-sasl"]
    finally:
        await consumer.stop()


async def test_aiokafka_is_refused_with_a_wrong_password(stack: manager.ServicesSettings) -> None:
    failures = _failed_authentications(stack)
    producer = AIOKafkaProducer(**_sasl(stack, "wrong"))
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()
    assert _failed_authentications(stack) > failures


def test_the_plaintext_listener_is_unchanged_and_the_password_is_not_logged(
    stack: manager.ServicesSettings,
) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.connection().bootstrap_servers, acks="all")
    try:
        producer.send(_topic(), value=b"plain").get(timeout=30)
    finally:
        producer.close()
    kafka_home = Path(stack.services_dir) / "kafka"
    for log in (kafka_home / "logs").iterdir():
        assert SASL_PASSWORD not in log.read_text(encoding="utf-8", errors="replace")
    assert (kafka_home / "server.properties").stat().st_mode & 0o077 == 0


def test_up_asking_for_a_sasl_listener_the_running_broker_lacks_fails_clearly(
    stack: manager.ServicesSettings,
) -> None:
    other = stack.model_copy(update={"kafka_sasl_port": free_port()})
    pid = manager.status(stack).kafka.pid
    with pytest.raises(ServicesError, match="runs without the SASL listener"):
        manager.up(other, timeout=30.0)
    assert manager.status(stack).kafka.pid == pid  # the running broker was left alone


# --- last: stop and start the whole stack ----------------------------------------------------


def test_everything_survives_down_and_up(stack: manager.ServicesSettings) -> None:
    key = f"it-restart:{uuid.uuid4().hex}"
    single = redis.Redis.from_url(stack.connection().redis_url)
    cluster = _cluster_client(stack)
    try:
        single.set(key, "single")
        cluster.set(key, "cluster")
    finally:
        single.close()
        cluster.close()

    down = manager.down(stack, timeout=30.0)
    assert (down.kafka_was_running, down.redis_was_running, down.redis_cluster_was_running) == (
        True,
        True,
        True,
    )
    stopped = manager.status(stack)
    assert not redis_svc.ping(stack.connection().redis_url)
    assert all(s.pid is None for s in stopped.redis_cluster)

    result = manager.up(stack, timeout=120.0)

    assert result.status.ok
    single = redis.Redis.from_url(stack.connection().redis_url)
    cluster = _cluster_client(stack)
    try:
        assert single.get(key) == b"single"
        assert cluster.get(key) == b"cluster"
    finally:
        single.close()
        cluster.close()
