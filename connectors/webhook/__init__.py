"""Webhook connector: deliver sent decisions to an HTTP endpoint, signed, with retries.

Receivers verify requests with :class:`SignatureVerifier` (which also refuses replays) or
:func:`verify_signature` (see :mod:`connectors.webhook.signing`).
"""

from __future__ import annotations

from connectors.webhook.delivery import (
    DEAD_LETTER_TOPIC,
    DeliveryConfig,
    DeliveryStats,
    WebhookDeliverer,
    WebhookError,
    redact,
)
from connectors.webhook.signing import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    SignatureError,
    SignatureVerifier,
    sign,
    signature_header,
    verify_signature,
)

__all__ = [
    "DEAD_LETTER_TOPIC",
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "DeliveryConfig",
    "DeliveryStats",
    "SignatureError",
    "SignatureVerifier",
    "WebhookDeliverer",
    "WebhookError",
    "redact",
    "sign",
    "signature_header",
    "verify_signature",
]
