"""Map :class:`~engine.config.TactSettings`' Kafka security fields to client keyword arguments.

Both Kafka clients Tact uses take the same names for SASL (``security_protocol``,
``sasl_mechanism``, ``sasl_plain_username``, ``sasl_plain_password``; SCRAM reuses the
``plain`` names) but differ for TLS: kafka-python takes ``ssl_cafile``, aiokafka an
``ssl_context``. Pass the result straight to ``KafkaProducer(**kw)`` / ``AIOKafkaConsumer(**kw)``.

The password is unwrapped from its ``SecretStr`` only here, into the client's arguments: do not
log the returned mapping.
"""

from __future__ import annotations

from typing import Any

from engine.config import TactSettings
from engine.errors import TactError

__all__ = ["KafkaSecurityError", "aiokafka_kwargs", "kafka_python_kwargs"]

_SASL = {"SASL_PLAINTEXT", "SASL_SSL"}
_TLS = {"SSL", "SASL_SSL"}


class KafkaSecurityError(TactError):
    """The Kafka security settings are inconsistent (e.g. SASL without a mechanism or user)."""


def _common(settings: TactSettings) -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol in _SASL:
        missing = [
            f"TACT_KAFKA_SASL_{name.upper()}"
            for name, value in (
                ("mechanism", settings.kafka_sasl_mechanism),
                ("username", settings.kafka_sasl_username),
                ("password", settings.kafka_sasl_password),
            )
            if not value
        ]
        if missing:
            raise KafkaSecurityError(
                f"security protocol {protocol} needs {', '.join(missing)} to be set"
            )
        assert settings.kafka_sasl_password is not None  # checked above; narrows for mypy
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_ssl_cafile is not None:
        if protocol not in _TLS:
            raise KafkaSecurityError(
                f"TACT_KAFKA_SSL_CAFILE is set but the security protocol {protocol} has no TLS"
            )
        if not settings.kafka_ssl_cafile.is_file():
            raise KafkaSecurityError(f"CA file not found: {settings.kafka_ssl_cafile}")
    return kwargs


def kafka_python_kwargs(settings: TactSettings) -> dict[str, Any]:
    """Security keyword arguments for kafka-python's ``KafkaProducer`` / ``KafkaConsumer``."""
    kwargs = _common(settings)
    if settings.kafka_ssl_cafile is not None:
        kwargs["ssl_cafile"] = str(settings.kafka_ssl_cafile)
    return kwargs


def aiokafka_kwargs(settings: TactSettings) -> dict[str, Any]:
    """Security keyword arguments for aiokafka's ``AIOKafkaProducer`` / ``AIOKafkaConsumer``.

    For TLS protocols an ``ssl_context`` is built: from the CA file if one is set, else from
    the system's trusted CAs (aiokafka refuses TLS without a context).
    """
    kwargs = _common(settings)
    if settings.kafka_security_protocol in _TLS:
        from aiokafka.helpers import (  # type: ignore[import-untyped,unused-ignore]
            create_ssl_context,
        )

        cafile = settings.kafka_ssl_cafile
        kwargs["ssl_context"] = create_ssl_context(cafile=str(cafile) if cafile else None)
    return kwargs
