"""POST /events core (IngestHandler) and its aiohttp adapter on a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from connectors.http import IngestHandler, mount
from engine.models.event import Event

TOKEN = "s3cret-token"
AUTH = f"Bearer {TOKEN}"


def _event(i: int, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"e{i}",
        "customer": f"c{i % 3}",
        "type": "app_open",
        "at": "2024-05-01T09:30:00+02:00",
        "data": {"n": i},
    }
    event.update(changes)
    return event


class Sink:
    """The injected ``send``: records what the handler forwarded."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[Event]] = []
        self.fail = fail

    async def __call__(self, events: Sequence[Event]) -> None:
        if self.fail:
            raise ConnectionError("kafka down")
        self.batches.append(list(events))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def handler(sink: Sink) -> IngestHandler:
    return IngestHandler(sink, token=TOKEN, max_batch=10, max_body_bytes=4096)


async def test_401_without_or_with_a_wrong_token(handler: IngestHandler, sink: Sink) -> None:
    body = orjson.dumps(_event(1))
    for header in (None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
        status, reply = await handler.handle(body, header)
        assert status == 401, header
        assert "token" in reply["error"]
    assert sink.batches == []


async def test_scheme_is_case_insensitive(handler: IngestHandler) -> None:
    status, _ = await handler.handle(orjson.dumps(_event(1)), f"bearer {TOKEN}")
    assert status == 202


async def test_no_configured_token_disables_ingest(sink: Sink) -> None:
    closed = IngestHandler(sink, token=None)
    status, reply = await closed.handle(orjson.dumps(_event(1)), AUTH)
    assert status == 403
    assert "TACT_API_TOKEN" in reply["error"]
    open_ = IngestHandler(sink, token=None, allow_anonymous=True)
    assert (await open_.handle(orjson.dumps(_event(1)), None))[0] == 202


async def test_202_single_event(handler: IngestHandler, sink: Sink) -> None:
    status, reply = await handler.handle(orjson.dumps(_event(7)), AUTH)
    assert (status, reply) == (202, {"accepted": 1, "ids": ["e7"]})
    assert [e.id for e in sink.batches[0]] == ["e7"]
    assert sink.batches[0][0].customer == "c1"


async def test_202_batch_with_ids_in_order(handler: IngestHandler, sink: Sink) -> None:
    events = [_event(i) for i in range(5)]
    status, reply = await handler.handle(orjson.dumps(events), AUTH)
    assert status == 202
    assert reply == {"accepted": 5, "ids": ["e0", "e1", "e2", "e3", "e4"]}
    assert len(sink.batches) == 1 and len(sink.batches[0]) == 5


async def test_400_lists_each_bad_index_and_sends_nothing(
    handler: IngestHandler, sink: Sink
) -> None:
    events: list[Any] = [
        _event(0),
        _event(1, customer=""),
        _event(2),
        _event(3, at="2024-05-01T09:30:00"),  # no offset
        "not an object",
        _event(5, extra=1),
    ]
    status, reply = await handler.handle(orjson.dumps(events), AUTH)
    assert status == 400
    assert [e["index"] for e in reply["errors"]] == [1, 3, 4, 5]
    reasons = {e["index"]: e["reason"] for e in reply["errors"]}
    assert reasons[1].startswith("customer:")
    assert reasons[3].startswith("at:")
    assert "object" in reasons[4]
    assert reasons[5].startswith("extra:")
    assert "none accepted" in reply["error"]
    assert sink.batches == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"42", "object or an array"),
        (b"[]", "empty batch"),
    ],
)
async def test_400_malformed_bodies(
    handler: IngestHandler, sink: Sink, body: bytes, fragment: str
) -> None:
    status, reply = await handler.handle(body, AUTH)
    assert status == 400
    assert fragment in reply["error"]
    assert sink.batches == []


async def test_413_over_the_body_or_batch_limit(handler: IngestHandler, sink: Sink) -> None:
    big = orjson.dumps(_event(1, data={"blob": "x" * 5000}))
    status, reply = await handler.handle(big, AUTH)
    assert (status, reply["limit"]) == (413, 4096)
    many = orjson.dumps([_event(i) for i in range(11)])
    status, reply = await handler.handle(many, AUTH)
    assert (status, reply["limit"]) == (413, 10)
    assert sink.batches == []


async def test_503_when_the_event_log_refuses() -> None:
    handler = IngestHandler(Sink(fail=True), token=TOKEN)
    status, reply = await handler.handle(orjson.dumps(_event(1)), AUTH)
    assert status == 503
    assert "kafka down" not in reply["error"]  # internals stay in the server log


@pytest.fixture
async def client(handler: IngestHandler) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    mount(app, handler)
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


async def test_aiohttp_202(client: TestClient[web.Request, web.Application], sink: Sink) -> None:
    resp = await client.post(
        "/events", data=orjson.dumps([_event(1), _event(2)]), headers={"Authorization": AUTH}
    )
    assert resp.status == 202
    assert resp.content_type == "application/json"
    assert await resp.json() == {"accepted": 2, "ids": ["e1", "e2"]}
    assert len(sink.batches) == 1


async def test_aiohttp_401_challenges(client: TestClient[web.Request, web.Application]) -> None:
    resp = await client.post("/events", data=orjson.dumps(_event(1)))
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_aiohttp_400_per_index(client: TestClient[web.Request, web.Application]) -> None:
    body = orjson.dumps([_event(0), _event(1, type="Bad Type")])
    resp = await client.post("/events", data=body, headers={"Authorization": AUTH})
    assert resp.status == 400
    assert [e["index"] for e in (await resp.json())["errors"]] == [1]


async def test_aiohttp_413_streamed_body(
    client: TestClient[web.Request, web.Application], sink: Sink
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check upfront
        for _ in range(10):
            yield b" " * 1000

    resp = await client.post("/events", data=chunks(), headers={"Authorization": AUTH})
    assert resp.status == 413
    assert (await resp.json())["limit"] == 4096
    assert sink.batches == []
