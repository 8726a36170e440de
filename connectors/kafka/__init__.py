"""Kafka access in one place: the validating event :class:`Publisher`, every client Tact uses
built from the settings with SASL/SSL applied (:mod:`connectors.kafka.clients`) and topic
administration (:mod:`connectors.kafka.admin`).

``from connectors.kafka import Publisher`` is all a backend service needs to send events.
"""

from __future__ import annotations

from connectors.kafka.admin import (
    KafkaTopicsError,
    MissingTopicsError,
    TopicSpec,
    ensure_topics,
    topic_partitions,
)
from connectors.kafka.publisher import (
    FileReport,
    InvalidEventsError,
    Publisher,
    PublishError,
    encode_event,
    publish_file,
    read_jsonl,
    validate,
)
from connectors.kafka.security import KafkaSecurityError, aiokafka_kwargs, kafka_python_kwargs

__all__ = [
    "FileReport",
    "InvalidEventsError",
    "KafkaSecurityError",
    "KafkaTopicsError",
    "MissingTopicsError",
    "PublishError",
    "Publisher",
    "TopicSpec",
    "aiokafka_kwargs",
    "encode_event",
    "ensure_topics",
    "kafka_python_kwargs",
    "publish_file",
    "read_jsonl",
    "topic_partitions",
    "validate",
]
