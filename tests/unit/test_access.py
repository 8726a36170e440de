"""Access: a blank TACT_API_TOKEN disables like an unset one (403 everywhere), and an open
/readyz shows only its checks' states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from pydantic import SecretStr

from connectors.http import IngestHandler
from engine.config import TactSettings
from engine.models.event import Event
from engine.worker.web import authenticated, readiness_view, refusal

EVENT = {"id": "e1", "customer": "c1", "type": "app_open", "at": "2024-05-01T09:30:00Z"}
# what a client sends when it has an empty token: the scheme alone, or with a space
BLANK_AUTH = ["Bearer", "Bearer ", "bearer  ", None]


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))


def _settings(monkeypatch: pytest.MonkeyPatch, token: str | None) -> TactSettings:
    monkeypatch.delenv("TACT_API_TOKEN", raising=False)
    if token is not None:
        monkeypatch.setenv("TACT_API_TOKEN", token)
    return TactSettings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("token", ["", "   ", "\t"])
def test_a_blank_token_is_no_token(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    assert _settings(monkeypatch, token).api_token is None
    assert TactSettings(_env_file=None, api_token=token).api_token is None  # type: ignore[call-arg]
    assert TactSettings(  # type: ignore[call-arg]
        _env_file=None, api_token=SecretStr(token)).api_token is None
    kept = _settings(monkeypatch, "real-token").api_token
    assert kept is not None and kept.get_secret_value() == "real-token"


@pytest.mark.parametrize("env", [None, "", "  "])
@pytest.mark.parametrize("auth", BLANK_AUTH)
def test_guarded_views_are_disabled_not_open(
    monkeypatch: pytest.MonkeyPatch, env: str | None, auth: str | None
) -> None:
    token = _settings(monkeypatch, env).api_token
    refused = refusal(token, auth, protected=True)
    assert refused is not None and refused[0] == 403
    assert "TACT_API_TOKEN" in refused[1]["error"]
    assert not authenticated(token, auth)
    assert refusal(token, auth, protected=False) is None  # open views stay open


@pytest.mark.parametrize("auth", BLANK_AUTH)
def test_a_blank_secret_given_directly_is_refused_too(auth: str | None) -> None:
    refused = refusal(SecretStr(""), auth, protected=True)
    assert refused is not None and refused[0] == 403
    assert not authenticated(SecretStr(" "), auth)


def test_with_a_token_the_guard_wants_it() -> None:
    token = SecretStr("t0k")
    assert refusal(token, "Bearer t0k", protected=True) is None
    assert authenticated(token, "Bearer t0k")
    for auth in [*BLANK_AUTH, "Bearer t0", "Basic t0k"]:
        refused = refusal(token, auth, protected=True)
        assert refused is not None and refused[0] == 401
        assert not authenticated(token, auth)


@pytest.mark.parametrize("env", [None, "", "  "])
@pytest.mark.parametrize("auth", BLANK_AUTH)
async def test_ingest_is_disabled_with_403(
    monkeypatch: pytest.MonkeyPatch, env: str | None, auth: str | None
) -> None:
    sink = Sink()
    handler = IngestHandler.from_settings(_settings(monkeypatch, env), sink)
    status, reply = await handler.handle(orjson.dumps(EVENT), auth)
    assert status == 403 and "TACT_API_TOKEN" in reply["error"]
    assert not handler.authorised(auth)
    assert sink.batches == []


async def test_ingest_given_a_blank_token_directly_is_disabled() -> None:
    sink = Sink()
    handler = IngestHandler(sink, token="  ")
    status, _ = await handler.handle(orjson.dumps(EVENT), "Bearer   ")
    assert status == 403 and sink.batches == []


FULL: dict[str, Any] = {
    "ready": False,
    "checks": {"kafka": True, "redis": False, "rules": True, "consumer": True},
    "rules_version": "abc123",
    "processing": False,
    "last_error": "ConnectionError: redis://:hunter2@redis:6379 refused",
    "rules_errors": ["rules/a.yaml:3:5: error: unknown message 'secret_campaign'"],
}


def test_open_readyz_shows_only_check_names_and_states() -> None:
    shown = readiness_view(FULL, detailed=False)
    assert shown == {"ready": False, "checks": FULL["checks"]}
    text = orjson.dumps(shown).decode()
    assert "hunter2" not in text and "secret_campaign" not in text and "abc123" not in text
    assert readiness_view(FULL, detailed=True) == FULL
