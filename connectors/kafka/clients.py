"""Every Kafka client Tact uses, built from :class:`~engine.config.TactSettings`.

The brokers and the security (SASL/SSL, :mod:`connectors.kafka.security`) always come from the
settings, so a client cannot be pointed elsewhere or downgraded by an override; everything else
(``client_id``, ``group_id``, timeouts, batching) is the caller's, as keyword overrides:

* aiokafka: :func:`aio_consumer`, :func:`aio_producer` (plain), :func:`aio_idempotent_producer`
  (``acks="all"``, idempotent), :func:`aio_transactional_producer` (idempotent + a
  ``transactional_id``); created unstarted, as aiokafka's constructors do;
* kafka-python (synchronous, for backend services and topic administration): :func:`producer`
  and :func:`admin`, connected on return.

:func:`plaintext` gives settings for an unsecured broker known only by its address (the local
services, tests, ``Publisher("host:9092")``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from connectors.kafka.security import KafkaSecurityError, aiokafka_kwargs, kafka_python_kwargs
from engine.config import TactSettings

__all__ = [
    "admin",
    "aio_consumer",
    "aio_idempotent_producer",
    "aio_producer",
    "aio_transactional_producer",
    "plaintext",
    "producer",
    "set_txn_retry",
]

# Where the client connects and how it authenticates: from the settings only.
_FROM_SETTINGS = frozenset({
    "bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
    "sasl_plain_password", "ssl_context", "ssl_cafile",
})
_IDEMPOTENT = {"acks": "all", "enable_idempotence": True}


def plaintext(bootstrap: str) -> TactSettings:
    """Settings for an unsecured broker at ``bootstrap``: the security fields cleared, the
    rest (topics, partitions) from the environment as usual."""
    return TactSettings(
        kafka_brokers=bootstrap,
        kafka_security_protocol="PLAINTEXT",
        kafka_sasl_mechanism=None,
        kafka_sasl_username=None,
        kafka_sasl_password=None,
        kafka_ssl_cafile=None,
    )


def _options(
    security: Mapping[str, Any],
    settings: TactSettings,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    fixed = _FROM_SETTINGS.intersection(overrides)
    if fixed:
        raise KafkaSecurityError(
            f"{', '.join(sorted(fixed))} come(s) from the settings (TACT_KAFKA_*) and cannot "
            "be overridden per client"
        )
    return {"bootstrap_servers": settings.brokers(), **defaults, **overrides, **security}


def aio_consumer(settings: TactSettings, *topics: str, **overrides: Any) -> Any:
    """An unstarted ``AIOKafkaConsumer`` (subscribed to ``topics`` if any are given)."""
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped,unused-ignore]

    return AIOKafkaConsumer(*topics, **_options(aiokafka_kwargs(settings), settings, {}, overrides))


def aio_producer(settings: TactSettings, **overrides: Any) -> Any:
    """An unstarted plain ``AIOKafkaProducer`` (aiokafka's defaults: ``acks=1``)."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    return AIOKafkaProducer(**_options(aiokafka_kwargs(settings), settings, {}, overrides))


def aio_idempotent_producer(settings: TactSettings, **overrides: Any) -> Any:
    """An unstarted ``AIOKafkaProducer`` that writes to every in-sync replica (``acks="all"``)
    and lets the broker drop duplicates of its own retries."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    options = _options(aiokafka_kwargs(settings), settings, _IDEMPOTENT, overrides)
    return AIOKafkaProducer(**options)


def aio_transactional_producer(
    settings: TactSettings, transactional_id: str, **overrides: Any
) -> Any:
    """An unstarted idempotent ``AIOKafkaProducer`` with ``transactional_id`` (starting it
    fences an earlier producer with the same id)."""
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    defaults = {**_IDEMPOTENT, "transactional_id": transactional_id}
    options = _options(aiokafka_kwargs(settings), settings, defaults, overrides)
    set_txn_retry(settings.kafka_txn_retry_ms)
    return AIOKafkaProducer(**options)


def set_txn_retry(ms: int) -> None:
    """How long a transaction waits before asking again to add its first partitions when the
    broker answers CONCURRENT_TRANSACTIONS (the previous transaction's commit markers are
    still being written, KAFKA-5477). A worker begins its next transaction right after a
    commit, so it meets this on almost every small batch; aiokafka waits a fixed 20 ms there
    (a module constant, no producer option), measured as most of a small transaction's time
    on a local broker (``load_tests/bench_txn.py``). Process-wide, like the constant."""
    from aiokafka.producer import sender  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(getattr(sender, "BACKOFF_OVERRIDE", None), float):
        # only slower without it; tests/unit/test_kafka_clients.py fails on such a version
        logging.getLogger("tact.kafka").warning(
            "this aiokafka has no BACKOFF_OVERRIDE: TACT_KAFKA_TXN_RETRY_MS has no effect")
        return
    sender.BACKOFF_OVERRIDE = ms / 1000


def producer(settings: TactSettings, **overrides: Any) -> Any:
    """A connected kafka-python ``KafkaProducer``; raises kafka-python's ``KafkaError`` (e.g. a
    timeout) if it cannot bootstrap, without leaving its connections or IO thread behind."""
    from kafka import KafkaProducer

    options = _options(kafka_python_kwargs(settings), settings, {}, overrides)
    return _kafka_python(KafkaProducer, options)


def admin(settings: TactSettings, **overrides: Any) -> Any:
    """A connected kafka-python ``KafkaAdminClient`` (same failure contract as :func:`producer`).

    kafka-python logs an admin client's whole configuration at DEBUG, the SASL password
    included; a filter on that logger masks it.
    """

    from kafka import KafkaAdminClient

    logging.getLogger("kafka.admin.client").addFilter(_MASK_PASSWORD)
    options = _options(kafka_python_kwargs(settings), settings, {}, overrides)
    return _kafka_python(KafkaAdminClient, options)


def _kafka_python(cls: Callable[..., Any], options: dict[str, Any]) -> Any:
    """``cls(**options)``, closing the network client it made if the constructor fails:
    kafka-python leaves its sockets and IO thread running when it cannot bootstrap."""
    from kafka.errors import KafkaError

    default_config: Mapping[str, Any] = getattr(cls, "DEFAULT_CONFIG", {})
    make_client = options.get("kafka_client") or default_config["kafka_client"]
    made: list[Any] = []

    def client_factory(**kwargs: Any) -> Any:
        made.append(make_client(**kwargs))
        return made[-1]

    try:
        return cls(**(options | {"kafka_client": client_factory}))
    except KafkaError:
        for client in made:
            client.close()
        raise


class _MaskPassword:
    """A logging filter replacing ``sasl_plain_password`` in a logged configuration mapping."""

    def filter(self, record: Any) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_masked(arg) for arg in args)
        elif isinstance(args, Mapping):
            record.args = _masked(args)
        return True


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping) and value.get("sasl_plain_password") is not None:
        return {**value, "sasl_plain_password": "**********"}
    return value


_MASK_PASSWORD = _MaskPassword()
