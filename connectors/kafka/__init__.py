"""Kafka connectors: the validating event :class:`Publisher` and SASL/SSL client settings.

``from connectors.kafka import Publisher`` is all a backend service needs to send events.
"""

from __future__ import annotations

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
    "PublishError",
    "Publisher",
    "aiokafka_kwargs",
    "encode_event",
    "kafka_python_kwargs",
    "publish_file",
    "read_jsonl",
    "validate",
]
