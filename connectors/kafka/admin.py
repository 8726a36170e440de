"""Topic administration through the settings' brokers and security: create what is missing
(:func:`ensure_topics`), or only check it exists; count a topic's partitions.

Existing topics are left as they are: neither their partition count nor their configuration
is changed or checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.kafka import clients
from engine.config import TactSettings
from engine.errors import TactError

__all__ = [
    "KafkaTopicsError",
    "MissingTopicsError",
    "TopicSpec",
    "ensure_topics",
    "topic_partitions",
]

# Kafka error code TOPIC_ALREADY_EXISTS: another client created it between our look and create.
_TOPIC_ALREADY_EXISTS = 36


class KafkaTopicsError(TactError):
    """Kafka could not be reached to check or create topics, or refused to create one."""


class MissingTopicsError(KafkaTopicsError):
    """Topics that must exist do not, and creating them is turned off; ``topics`` names them."""

    def __init__(self, topics: list[str], brokers: str) -> None:
        self.topics = topics
        super().__init__(
            f"missing Kafka topic(s) on {brokers}: {', '.join(topics)}; creating topics is "
            "turned off (--no-create-topics): create them first, or turn it back on"
        )


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How to create a topic: ``partitions``, ``config`` (topic-level settings such as
    ``{"cleanup.policy": "compact"}``) and ``replication_factor`` (None: the broker's
    ``default.replication.factor``)."""

    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int | None = None

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise KafkaTopicsError(f"a topic needs at least 1 partition, not {self.partitions}")
        if self.replication_factor is not None and self.replication_factor < 1:
            raise KafkaTopicsError(
                f"replication factor must be at least 1, not {self.replication_factor}"
            )
        bad = [key for key, value in self.config.items()
               if not (isinstance(key, str) and isinstance(value, str) and key)]
        if bad:
            raise KafkaTopicsError(f"topic config keys and values must be strings: {bad!r}")

    def request(self) -> dict[str, Any]:
        """This spec as one entry of kafka-python's ``create_topics`` mapping."""
        return {
            "num_partitions": self.partitions,
            "replication_factor": self.replication_factor or -1,  # -1: the broker's default
            "configs": dict(self.config),
        }


def _describe(settings: TactSettings) -> str:
    """Where and how we connect, for error messages (never the password)."""
    protocol = settings.kafka_security_protocol
    who = ""
    if protocol.startswith("SASL"):
        who = f", {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
    return f"{settings.kafka_brokers} ({protocol}{who})"


def ensure_topics(
    settings: TactSettings,
    topics: Mapping[str, TopicSpec],
    *,
    create: bool = True,
    timeout: float = 30.0,
) -> list[str]:
    """Create the ``topics`` that do not exist yet; returns those created (sorted).

    With ``create=False`` nothing is created: a :class:`MissingTopicsError` names every topic
    that does not exist. Either way, returns once each topic has a leader for every partition.
    Blocking (kafka-python): from async code call it in a thread. ``timeout`` (seconds)
    bounds connecting and each request. Raises :class:`KafkaTopicsError` when Kafka cannot be
    reached (wrong address or credentials) or refuses a topic.
    """
    if not topics:
        return []
    from kafka.errors import KafkaError

    timeout_ms = max(1, int(timeout * 1000))
    where = _describe(settings)
    try:
        client = clients.admin(settings, client_id="tact-ensure-topics",
                               bootstrap_timeout_ms=timeout_ms, request_timeout_ms=timeout_ms)
    except KafkaError as exc:
        raise KafkaTopicsError(
            f"cannot connect to Kafka at {where} within {timeout:g} s: {exc}; check the "
            "brokers and the security settings (TACT_KAFKA_SECURITY_PROTOCOL, "
            "TACT_KAFKA_SASL_*; a wrong password looks like an unreachable broker)"
        ) from exc
    try:
        existing = set(client.list_topics())
        missing = sorted(name for name in topics if name not in existing)
        if missing and not create:
            raise MissingTopicsError(missing, settings.kafka_brokers)
        created = _create(client, {name: topics[name] for name in missing}, timeout_ms)
        client.wait_for_topics(list(topics), timeout_ms=timeout_ms)
        return created
    except KafkaError as exc:
        raise KafkaTopicsError(f"checking or creating topics on {where} failed: {exc}") from exc
    finally:
        client.close()


def _create(client: Any, specs: Mapping[str, TopicSpec], timeout_ms: int) -> list[str]:
    if not specs:
        return []
    request = {name: spec.request() for name, spec in specs.items()}
    response = client.create_topics(request, timeout_ms=timeout_ms, raise_errors=False)
    created: list[str] = []
    failures: list[str] = []
    for entry in response.get("topics", []):
        code = int(entry.get("error_code", 0))
        if code == 0:
            created.append(str(entry["name"]))
        elif code != _TOPIC_ALREADY_EXISTS:
            failures.append(f"{entry['name']}: {entry.get('error_message') or code}")
    if failures:
        raise KafkaTopicsError("Kafka refused to create topic(s): " + "; ".join(failures))
    return sorted(created)


async def topic_partitions(settings: TactSettings, topic: str) -> int | None:
    """How many partitions ``topic`` has (None if it does not exist or Kafka does not say
    within 10 s)."""
    from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

    client = clients.aio_producer(settings, client_id="tact-describe", request_timeout_ms=10_000)
    await client.start()
    try:
        parts = await asyncio.wait_for(client.partitions_for(topic), 10)
        return len(parts) if parts else None
    except (TimeoutError, KafkaError):
        return None
    finally:
        await client.stop()
