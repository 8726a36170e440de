"""Configuration from the environment (prefix ``TACT_``) or a ``.env`` file.

Secrets are ``SecretStr``: masked in ``str()``, ``repr()`` and logs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class TactSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TACT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Kafka
    kafka_brokers: str = Field("127.0.0.1:9092", description="Comma-separated bootstrap servers.")
    events_topic: str = "tact.events"
    decisions_topic: str = "tact.decisions"
    dead_letter_topic: str = "tact.dead-letter"
    state_topic: str = Field("tact.state", description="Compacted changelog of customer "
                             "states, partitioned like the events topic.")
    events_partitions: int = Field(6, ge=1)
    decisions_partitions: int = Field(6, ge=1)
    consumer_group: str = "tact-worker"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_txn_retry_ms: int = Field(
        2, ge=1, le=1000, description="Wait before a transaction asks again to add its first "
        "partitions while the broker still writes the previous one's markers (aiokafka: 20).")

    # Redis
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")  # may carry a password
    redis_password: SecretStr | None = None
    redis_tls: bool = False
    redis_cluster: bool = Field(False, description="TACT_REDIS_URL names a node of a Redis "
                                "Cluster.")
    state_ttl_seconds: int = Field(90 * 86400, ge=60, description="Inactive customers expire.")
    dedupe_ttl_seconds: int = Field(7 * 86400, ge=60)

    # Worker
    rules_path: Path = Path("rules")
    batch_max_events: int = Field(2000, ge=1)
    batch_max_latency_ms: int = Field(5, ge=0, description="Longest wait to fill a batch.")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    api_token: SecretStr | None = Field(None, description="Bearer token for POST /events, admin.")
    protect_metrics: bool = Field(False, description="Bearer token for /metrics, /stats, "
                                  "/api/dashboard.")
    protect_health: bool = Field(False, description="Bearer token for /healthz, /readyz.")
    telemetry_interval_s: float = Field(2.0, gt=0, description="Lag and pending follow-ups "
                                        "refresh.")
    reload_interval_s: float = Field(1.0, gt=0)
    followup_interval_s: float = Field(1.0, gt=0)

    # Event bounds, the same on every path (ingest, publisher, worker): see engine.models.limits
    event_earliest: AwareDatetime = Field(datetime(2000, 1, 1, tzinfo=UTC),
                                          description="Events with an earlier `at` are refused.")
    event_max_ahead: timedelta = Field(timedelta(days=365), ge=timedelta(0),
                                       description="Events with `at` further ahead of the "
                                       "clock are refused (ISO 8601 duration: P365D, PT12H).")

    # The single customer view (GET /customers/{id}, tact customer)
    pii_attributes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Attributes whose values the customer view masks "
        "(comma-separated names).")

    # Webhook connector
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(5, ge=1)

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        """``TACT_API_TOKEN=""`` (or only spaces) disables like unset: a blank token would
        otherwise match ``Authorization: Bearer`` with nothing after it."""
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(raw, str) and not raw.strip():
            return None
        return value

    @field_validator("pii_attributes", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """``TACT_PII_ATTRIBUTES=email, phone``: names split on commas, blanks dropped."""
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    def brokers(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",") if b.strip()]
