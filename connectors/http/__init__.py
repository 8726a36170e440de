"""HTTP connectors: ``POST /events`` ingest (framework-light core plus an aiohttp adapter)."""

from __future__ import annotations

from connectors.http.ingest import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    IngestHandler,
    Sender,
    kafka_sender,
    make_aiohttp_view,
    mount,
)

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_BODY_BYTES",
    "IngestHandler",
    "Sender",
    "kafka_sender",
    "make_aiohttp_view",
    "mount",
]
