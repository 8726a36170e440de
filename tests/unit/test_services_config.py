"""What `tact services` and docker-compose configure: durable Redis, the opt-in SASL listener,
cluster nodes. The processes themselves are tested in tests/integration/test_services_stack.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from engine.services import ServicesError, manager
from engine.services.kafka_sasl import SaslPlain
from tests.conftest import REPO


def _conf(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _props(path: Path) -> dict[str, str]:
    lines = [line for line in _conf(path) if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_redis_is_written_durable(tmp_path: Path) -> None:
    node = manager.ServicesSettings(services_dir=tmp_path).redis_node()
    node.write_config()
    conf = _conf(node.config_file)
    assert {"appendonly yes", "appendfsync everysec", 'save ""'} <= set(conf)
    assert "appendonly no" not in conf
    assert f"dir {tmp_path / 'redis' / 'data'}" in conf
    assert not any(line.startswith("cluster-") for line in conf)


def test_cluster_nodes_have_own_dirs_and_are_durable(tmp_path: Path) -> None:
    settings = manager.ServicesSettings(services_dir=tmp_path, redis_cluster_port=7100)
    nodes = settings.redis_cluster_nodes().nodes()
    assert [n.port for n in nodes] == [7100, 7101, 7102]
    for node in nodes:
        node.write_config()
        conf = _conf(node.config_file)
        assert {"cluster-enabled yes", "cluster-config-file nodes.conf", "appendonly yes"} <= set(
            conf
        )
        assert f"dir {tmp_path / 'redis-cluster' / str(node.port) / 'data'}" in conf
    assert settings.connection().redis_cluster_url is None
    enabled = settings.model_copy(update={"redis_cluster": True})
    assert enabled.connection().redis_cluster_url == "redis://127.0.0.1:7100"


def test_cluster_port_leaves_room_for_the_bus_ports() -> None:
    with pytest.raises(ValueError):
        manager.ServicesSettings(redis_cluster_port=55534)  # bus port 65536 would not exist


def test_default_broker_has_only_the_plaintext_listener(tmp_path: Path) -> None:
    node = manager.ServicesSettings(services_dir=tmp_path).kafka_node()
    node.write_config()
    props = _props(node.properties_file)
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert not any("sasl" in key for key in props)


def test_sasl_listener_is_added_beside_plaintext(tmp_path: Path) -> None:
    settings = manager.ServicesSettings(
        services_dir=tmp_path,
        kafka_sasl_port=9094,
        kafka_sasl_username="alice",
        kafka_sasl_password="s3cret!",
    )
    node = settings.kafka_node()
    node.write_config()
    props = _props(node.properties_file)
    assert props["listeners"].split(",") == [
        "PLAINTEXT://127.0.0.1:9092",
        "CONTROLLER://127.0.0.1:9093",
        "SASL_PLAINTEXT://127.0.0.1:9094",
    ]
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert "SASL_PLAINTEXT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    jaas = props["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert 'user_alice="s3cret!"' in jaas
    assert node.properties_file.stat().st_mode & 0o077 == 0
    assert settings.connection().kafka_sasl_bootstrap == "127.0.0.1:9094"


def test_sasl_password_stays_out_of_reprs() -> None:
    settings = manager.ServicesSettings(kafka_sasl_port=9094, kafka_sasl_password="hunter2-x")
    assert "hunter2-x" not in repr(settings)
    assert "hunter2-x" not in repr(settings.kafka_node())


@pytest.mark.parametrize("password", ['a"b', "a\\b", "a b", ""])
def test_sasl_credentials_that_would_break_the_jaas_line_are_refused(password: str) -> None:
    with pytest.raises(ServicesError, match="password"):
        SaslPlain(port=9094, username="tact", password=password)


def test_compose_keeps_redis_and_kafka_data_in_named_volumes() -> None:
    compose = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    redis, kafka = compose["services"]["redis"], compose["services"]["kafka"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert "redis-data:/data" in redis["volumes"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dirs}" in kafka["volumes"]
    assert {"redis-data", "kafka-data"} <= set(compose["volumes"])
