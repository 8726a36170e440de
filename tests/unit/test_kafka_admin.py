"""ensure_topics: what it asks the admin client to create (partitions, per-topic configs), what
it leaves alone, and how it fails (missing topics with creation off, refusals, no broker)."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from pydantic import SecretStr

from connectors.kafka import admin as kafka_admin
from connectors.kafka import clients
from connectors.kafka.admin import KafkaTopicsError, MissingTopicsError, TopicSpec, ensure_topics
from engine.config import TactSettings

SETTINGS = TactSettings(kafka_brokers="k1:9093", kafka_security_protocol="SASL_PLAINTEXT",
                        kafka_sasl_mechanism="PLAIN", kafka_sasl_username="svc",
                        kafka_sasl_password=SecretStr("pw-not-in-errors"))


class FakeAdmin:
    """kafka-python's KafkaAdminClient as ensure_topics uses it, over a dict of topics."""

    def __init__(self, existing: set[str], refuse: dict[str, tuple[int, str]] | None = None):
        self.existing = set(existing)
        self.refuse = refuse or {}
        self.requests: list[dict[str, Any]] = []
        self.waited: list[str] = []
        self.closed = False
        self.built_with: dict[str, Any] = {}

    def list_topics(self) -> list[str]:
        return sorted(self.existing)

    def create_topics(self, request: dict[str, Any], timeout_ms: int,
                      raise_errors: bool) -> dict[str, Any]:
        assert raise_errors is False
        self.requests.append(request)
        out = []
        for name in request:
            code, message = self.refuse.get(name, (0, None))
            out.append({"name": name, "error_code": code, "error_message": message})
            if code == 0:
                self.existing.add(name)
        return {"topics": out}

    def wait_for_topics(self, names: list[str], timeout_ms: int) -> None:
        self.waited = list(names)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    admin = FakeAdmin(existing={"tact.events"})

    def build(settings: TactSettings, **overrides: Any) -> FakeAdmin:
        admin.built_with = {"settings": settings, **overrides}
        return admin

    monkeypatch.setattr(clients, "admin", build)
    return admin


def test_creates_only_the_missing_topics_with_their_configs(fake: FakeAdmin) -> None:
    created = ensure_topics(SETTINGS, {
        "tact.events": TopicSpec(6),
        "tact.state": TopicSpec(3, config={"cleanup.policy": "compact",
                                           "min.compaction.lag.ms": "60000"}),
        "tact.dead-letter": TopicSpec(1, replication_factor=3),
    })
    assert created == ["tact.dead-letter", "tact.state"]
    (request,) = fake.requests
    assert request == {
        "tact.state": {"num_partitions": 3, "replication_factor": -1,
                       "configs": {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}},
        "tact.dead-letter": {"num_partitions": 1, "replication_factor": 3, "configs": {}},
    }
    assert sorted(fake.waited) == ["tact.dead-letter", "tact.events", "tact.state"]
    assert fake.closed
    assert fake.built_with["settings"] is SETTINGS


def test_nothing_to_create_sends_no_request(fake: FakeAdmin) -> None:
    assert ensure_topics(SETTINGS, {"tact.events": TopicSpec(6)}) == []
    assert fake.requests == [] and fake.waited == ["tact.events"] and fake.closed


def test_with_creation_off_a_missing_topic_is_named_and_nothing_created(fake: FakeAdmin) -> None:
    with pytest.raises(MissingTopicsError) as caught:
        ensure_topics(SETTINGS, {"tact.events": TopicSpec(6), "tact.decisions": TopicSpec(6),
                                 "tact.dead-letter": TopicSpec(1)}, create=False)
    assert caught.value.topics == ["tact.dead-letter", "tact.decisions"]
    assert "tact.dead-letter, tact.decisions" in str(caught.value)
    assert "k1:9093" in str(caught.value)
    assert fake.requests == [] and fake.closed
    assert ensure_topics(SETTINGS, {"tact.events": TopicSpec(6)}, create=False) == []


def test_a_topic_created_meanwhile_is_fine_a_refused_one_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = FakeAdmin(existing=set(), refuse={"raced": (36, "Topic 'raced' already exists."),
                                              "bad": (42, "Invalid config cleanup.policy")})
    monkeypatch.setattr(clients, "admin", lambda settings, **kw: admin)
    assert ensure_topics(SETTINGS, {"raced": TopicSpec(1)}) == []
    with pytest.raises(KafkaTopicsError, match=r"bad: Invalid config cleanup\.policy"):
        ensure_topics(SETTINGS, {"bad": TopicSpec(1, config={"cleanup.policy": "squash"})})
    assert admin.closed


def test_an_unreachable_broker_is_a_clear_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(settings: TactSettings, **overrides: Any) -> Any:
        assert overrides["bootstrap_timeout_ms"] == 2500
        raise KafkaTimeoutError("Unable to bootstrap from k1:9093")

    monkeypatch.setattr(clients, "admin", unreachable)
    with pytest.raises(KafkaTopicsError) as caught:
        ensure_topics(SETTINGS, {"t": TopicSpec(1)}, timeout=2.5)
    message = str(caught.value)
    assert "k1:9093 (SASL_PLAINTEXT, PLAIN as 'svc')" in message
    assert "within 2.5 s" in message and "TACT_KAFKA_SASL" in message
    assert "pw-not-in-errors" not in message


@pytest.mark.parametrize(("spec", "reason"), [
    ({"partitions": 0}, "at least 1 partition"),
    ({"partitions": 1, "replication_factor": 0}, "replication factor"),
    ({"partitions": 1, "config": {"retention.ms": 1000}}, "strings"),
])
def test_bad_topic_specs_are_refused(spec: dict[str, Any], reason: str) -> None:
    with pytest.raises(KafkaTopicsError, match=reason):
        TopicSpec(**spec)


def test_no_topics_needs_no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_admin.clients, "admin", None)  # would fail if called
    assert ensure_topics(SETTINGS, {}) == []
