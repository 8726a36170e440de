"""Every Kafka client is built from the settings with their SASL/SSL applied; per-client
overrides cannot change where a client connects or how it authenticates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import aiokafka  # type: ignore[import-untyped,unused-ignore]
import certifi
import kafka
import pytest
from aiokafka.errors import KafkaConnectionError  # type: ignore[import-untyped,unused-ignore]
from kafka.errors import KafkaTimeoutError
from pydantic import SecretStr

from connectors.kafka import Publisher, clients
from connectors.kafka.security import KafkaSecurityError
from connectors.webhook import DeliveryConfig, WebhookDeliverer, WebhookError
from engine.config import TactSettings

PASSWORD = "pw-" + "x" * 12
SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_plain_username": "svc-tact",
    "sasl_plain_password": PASSWORD,
}


def _sasl_settings(**over: Any) -> TactSettings:
    base: dict[str, Any] = {
        "kafka_brokers": "k1:9093, k2:9093",
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "svc-tact",
        "kafka_sasl_password": SecretStr(PASSWORD),
    }
    return TactSettings(**(base | over))


class _Recorder:
    """Stands in for a client class: records the keyword arguments it was built with."""

    made: list[dict[str, Any]]
    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {"kafka_client": object}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).made.append({"args": args, **kwargs})

    async def start(self) -> None:
        raise KafkaConnectionError("recorder: no broker")

    async def stop(self) -> None:
        return None


def _recorder() -> type[_Recorder]:
    return type("Recorded", (_Recorder,), {"made": []})


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, type[_Recorder]]:
    """Every client class the factories use, replaced by a recorder."""
    classes = {
        "AIOKafkaConsumer": (aiokafka, _recorder()),
        "AIOKafkaProducer": (aiokafka, _recorder()),
        "KafkaProducer": (kafka, _recorder()),
        "KafkaAdminClient": (kafka, _recorder()),
    }
    for name, (module, cls) in classes.items():
        monkeypatch.setattr(module, name, cls)
    return {name: cls for name, (_, cls) in classes.items()}


FACTORIES: dict[str, tuple[str, Callable[[TactSettings], Any]]] = {
    "consumer": ("AIOKafkaConsumer", lambda s: clients.aio_consumer(s, "t1", group_id="g")),
    "producer": ("AIOKafkaProducer", lambda s: clients.aio_producer(s, client_id="p")),
    "idempotent": ("AIOKafkaProducer", lambda s: clients.aio_idempotent_producer(s)),
    "transactional": ("AIOKafkaProducer",
                      lambda s: clients.aio_transactional_producer(s, "tx-1", linger_ms=2)),
    "sync producer": ("KafkaProducer", lambda s: clients.producer(s, linger_ms=5)),
    "admin": ("KafkaAdminClient", lambda s: clients.admin(s, client_id="a")),
}


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_every_client_gets_the_brokers_and_sasl(
    kind: str, recorded: dict[str, type[_Recorder]]
) -> None:
    cls_name, make = FACTORIES[kind]
    make(_sasl_settings())
    (kwargs,) = recorded[cls_name].made
    assert kwargs["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert {k: kwargs[k] for k in SASL} == SASL


def test_the_kinds_differ_only_in_their_defaults_and_overrides(
    recorded: dict[str, type[_Recorder]],
) -> None:
    s = _sasl_settings()
    clients.aio_producer(s)
    clients.aio_idempotent_producer(s, client_id="ticks")
    clients.aio_transactional_producer(s, "tx-1", transaction_timeout_ms=15_000)
    plain, idempotent, transactional = recorded["AIOKafkaProducer"].made
    assert "acks" not in plain and "enable_idempotence" not in plain
    assert (idempotent["acks"], idempotent["enable_idempotence"]) == ("all", True)
    assert idempotent["client_id"] == "ticks" and "transactional_id" not in idempotent
    assert transactional["transactional_id"] == "tx-1"
    assert (transactional["acks"], transactional["enable_idempotence"]) == ("all", True)
    assert transactional["transaction_timeout_ms"] == 15_000
    clients.aio_consumer(s, "a", "b", group_id="g")
    (consumer,) = recorded["AIOKafkaConsumer"].made
    assert consumer["args"] == ("a", "b") and consumer["group_id"] == "g"


@pytest.mark.parametrize("kind", list(FACTORIES))
@pytest.mark.parametrize("key", ["bootstrap_servers", "security_protocol", "sasl_plain_password"])
def test_overrides_cannot_redirect_or_downgrade_a_client(
    kind: str, key: str, recorded: dict[str, type[_Recorder]]
) -> None:
    cls_name, _ = FACTORIES[kind]
    makers: dict[str, Callable[..., Any]] = {
        "consumer": clients.aio_consumer, "producer": clients.aio_producer,
        "idempotent": clients.aio_idempotent_producer, "sync producer": clients.producer,
        "admin": clients.admin,
        "transactional": lambda s, **kw: clients.aio_transactional_producer(s, "tx", **kw),
    }
    with pytest.raises(KafkaSecurityError, match=key):
        makers[kind](_sasl_settings(), **{key: "PLAINTEXT"})
    assert recorded[cls_name].made == []


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_incomplete_sasl_settings_build_no_client(
    kind: str, recorded: dict[str, type[_Recorder]]
) -> None:
    cls_name, make = FACTORIES[kind]
    with pytest.raises(KafkaSecurityError, match="TACT_KAFKA_SASL_USERNAME"):
        make(_sasl_settings(kafka_sasl_username=None))
    assert recorded[cls_name].made == []


def test_tls_is_a_context_for_aiokafka_and_a_ca_file_for_kafka_python(
    recorded: dict[str, type[_Recorder]],
) -> None:
    import ssl

    s = _sasl_settings(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=Path(certifi.where()))
    clients.aio_consumer(s)
    clients.producer(s)
    clients.admin(s)
    (consumer,) = recorded["AIOKafkaConsumer"].made
    assert isinstance(consumer["ssl_context"], ssl.SSLContext)
    for name in ("KafkaProducer", "KafkaAdminClient"):
        (kwargs,) = recorded[name].made
        assert kwargs["ssl_cafile"] == certifi.where()
        assert kwargs["security_protocol"] == "SASL_SSL"


def test_plaintext_clears_the_security_of_the_environment(
    monkeypatch: pytest.MonkeyPatch, recorded: dict[str, type[_Recorder]]
) -> None:
    monkeypatch.setenv("TACT_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TACT_KAFKA_SASL_USERNAME", "someone")
    monkeypatch.setenv("TACT_EVENTS_TOPIC", "env.events")
    s = clients.plaintext("127.0.0.1:9092")
    assert (s.kafka_security_protocol, s.kafka_sasl_username) == ("PLAINTEXT", None)
    assert s.events_topic == "env.events"  # everything else as usual
    clients.aio_producer(s)
    (kwargs,) = recorded["AIOKafkaProducer"].made
    assert kwargs["security_protocol"] == "PLAINTEXT" and "sasl_plain_password" not in kwargs


def test_the_publisher_builds_its_producer_with_the_settings_security(
    recorded: dict[str, type[_Recorder]],
) -> None:
    Publisher(_sasl_settings(), compression_type="gzip")
    (kwargs,) = recorded["KafkaProducer"].made
    assert {k: kwargs[k] for k in SASL} == SASL
    assert (kwargs["acks"], kwargs["enable_idempotence"]) == ("all", True)
    assert kwargs["compression_type"] == "gzip"


async def test_the_webhook_builds_its_consumer_and_producer_with_the_settings_security(
    recorded: dict[str, type[_Recorder]],
) -> None:
    s = _sasl_settings(webhook_url="https://hooks.example/tact",
                       webhook_secret=SecretStr("whsec"))
    config = DeliveryConfig.from_settings(s)
    assert PASSWORD not in repr(config)
    with pytest.raises(WebhookError, match="k1:9093"):
        await WebhookDeliverer(config).run()  # the recorder's start() fails like a broker
    (consumer,) = recorded["AIOKafkaConsumer"].made
    (producer,) = recorded["AIOKafkaProducer"].made
    for kwargs in (consumer, producer):
        assert {k: kwargs[k] for k in SASL} == SASL
    assert consumer["group_id"] == "tact-webhook"
    assert (producer["acks"], producer["enable_idempotence"]) == ("all", True)


def test_a_failed_admin_leaves_no_thread_and_logs_no_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Real kafka-python against a closed port: it logs its configuration at DEBUG and starts
    an IO thread before it fails to bootstrap."""
    before = {t.ident for t in threading.enumerate()}
    s = _sasl_settings(kafka_brokers="127.0.0.1:1")
    with caplog.at_level(logging.DEBUG, logger="kafka"), pytest.raises(KafkaTimeoutError):
        clients.admin(s, bootstrap_timeout_ms=300)
    assert "Starting KafkaAdminClient with configuration" in caplog.text
    assert PASSWORD not in caplog.text
    assert "svc-tact" in caplog.text  # the rest of the configuration is still logged
    leaked = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leaked == []


async def test_transactional_producer_sets_the_concurrent_transactions_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka waits a fixed 20 ms when a transaction's first AddPartitionsToTxn meets the
    previous commit's markers; the worker's producer makes it TACT_KAFKA_TXN_RETRY_MS."""
    from aiokafka.producer import sender  # type: ignore[import-untyped,unused-ignore]

    # fails on an aiokafka without the constant (the setting would do nothing there)
    assert isinstance(sender.BACKOFF_OVERRIDE, float)
    monkeypatch.setattr(sender, "BACKOFF_OVERRIDE", sender.BACKOFF_OVERRIDE)
    settings = clients.plaintext("127.0.0.1:9092").model_copy(update={"kafka_txn_retry_ms": 7})
    clients.aio_transactional_producer(settings, "tx-retry-test")
    assert abs(sender.BACKOFF_OVERRIDE - 0.007) < 1e-9
    assert TactSettings().kafka_txn_retry_ms == 2


def test_txn_retry_is_bounded() -> None:
    with pytest.raises(ValueError, match="kafka_txn_retry_ms"):
        TactSettings(kafka_txn_retry_ms=0)
