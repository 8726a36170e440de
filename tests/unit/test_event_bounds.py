"""Issue 9, item 2: one validation at the edge. Every bound refuses the same events with the
same reason on the three paths: HTTP ingest, the publisher, and the worker's decoder."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from connectors.http import IngestHandler
from connectors.kafka.publisher import encode_event, read_jsonl, validate
from engine.config import TactSettings
from engine.errors import EventValidationError
from engine.models.event import Event
from engine.models.limits import MAX_DATA_BYTES, MAX_DATA_DEPTH, EventBounds
from engine.worker.codec import RECEIVED_HEADER, DeadLetter, Source, decode_event

TOKEN = "s3cret-token"
AUTH = f"Bearer {TOKEN}"
SOURCE = Source("tact.events", 0, 7, 0)


class EncodingSink:
    """Like ``kafka_sender``: encodes each event for Kafka, where the old 503s came from."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.sent.extend(encode_event(e) for e in events)


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"id": "e1", "customer": "c1", "type": "app_open",
                             "at": "2024-05-01T09:30:00+02:00", "data": {"n": 1}}
    event.update(changes)
    return event


def _with_data(data_json: bytes) -> bytes:
    return (b'{"id":"e1","customer":"c1","type":"app_open",'
            b'"at":"2024-05-01T09:30:00+02:00","data":' + data_json + b"}")


def _nested(levels: int) -> bytes:
    """``data`` with ``levels`` levels of objects (``data`` itself is level 1)."""
    return _with_data(b'{"a":' * (levels - 1) + b"{}" + b"}" * (levels - 1))


async def _three_paths(raw: bytes) -> dict[str, str | None]:
    """The refusal reason on each path (None: accepted), with the default bounds."""
    sink = EncodingSink()
    handler = IngestHandler(sink, token=TOKEN, max_body_bytes=4 * 1024 * 1024)
    status, reply = await handler.handle(raw, AUTH)
    if status == 202:
        ingest = None
    else:
        assert status == 400, reply  # a permanent error: never a 503 "retry"
        ingest = reply["errors"][0]["reason"] if "errors" in reply else reply["error"]
    try:
        validate(raw)
        publisher = None
    except EventValidationError as exc:
        publisher = exc.reason
    decoded = decode_event(b"c1", raw, None, SOURCE, time.time())
    worker = decoded.reason if isinstance(decoded, DeadLetter) else None
    return {"ingest": ingest, "publisher": publisher, "worker": worker}


REFUSED = [
    (orjson.dumps(_event(at="9999-12-31T23:59:59-12:00")),
     "at: 9999-12-31T23:59:59-12:00 is after the latest accepted time 20"),
    (orjson.dumps(_event(at="9999-12-31T23:59:59Z")),
     "at: 9999-12-31T23:59:59+00:00 is after the latest accepted time 20"),
    (orjson.dumps(_event(at="0001-01-01T00:30:00+01:00")),
     "at: 0001-01-01T00:30:00+01:00 is before the earliest accepted time "
     "2000-01-01T00:00:00Z (TACT_EVENT_EARLIEST)"),
    (orjson.dumps(_event(at="1999-12-31T23:59:59+00:00")),
     "at: 1999-12-31T23:59:59+00:00 is before the earliest accepted time"),
    (_with_data(b'{"n":18446744073709551616}'),
     "data.n: integer of 65 bits, outside the signed 64-bit range"),
    (_with_data(b'{"n":9223372036854775808}'),
     "data.n: integer of 64 bits, outside the signed 64-bit range"),
    (_with_data(b'{"list":[1,{"x":-9223372036854775809}]}'),
     "data.list[1].x: integer of 64 bits, outside the signed 64-bit range"),
    (_with_data(b'{"n":NaN}'), "data.n: nan is not a finite number"),
    (_with_data(b'{"n":-Infinity}'), "data.n: -inf is not a finite number"),
    (_with_data(b'{"n":1e400}'), "data.n: inf is not a finite number"),
    (_with_data(b'{"blob":"' + b"x" * MAX_DATA_BYTES + b'"}'),
     f"data: {MAX_DATA_BYTES + 11} bytes as compact JSON, over the limit of {MAX_DATA_BYTES}"),
]


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
async def test_each_bound_refuses_alike_on_every_path(raw: bytes, reason: str) -> None:
    outcome = await _three_paths(raw)
    assert all(r is not None and r.startswith(reason) for r in outcome.values()), outcome
    assert len(set(outcome.values())) == 1, outcome  # the very same reason


ACCEPTED = [
    orjson.dumps(_event(at="2000-01-01T00:00:00Z")),
    orjson.dumps(_event(at="1999-12-31T23:59:59-00:01")),  # 2000-01-01T00:00:59Z
    orjson.dumps(_event(at=(datetime.now(UTC) + timedelta(days=364)).isoformat())),
    _with_data(b'{"max":9223372036854775807,"min":-9223372036854775808,"f":1.7e308}'),
    _with_data(b'{"blob":"' + b"x" * (MAX_DATA_BYTES - 11) + b'"}'),  # exactly the limit
    _nested(MAX_DATA_DEPTH),
]


@pytest.mark.parametrize("raw", ACCEPTED)
async def test_in_bounds_is_accepted_on_every_path(raw: bytes) -> None:
    assert await _three_paths(raw) == {"ingest": None, "publisher": None, "worker": None}


@pytest.mark.parametrize("levels", [33, 198, 199, 200, 201, 252, 253, 254, 1022, 1023, 1024])
async def test_depth_beyond_the_limit_is_a_400_and_the_same_dead_letter(levels: int) -> None:
    # Before: 200-253 accepted by ingest and dead-lettered by the worker; 254-1024 a 503.
    outcome = await _three_paths(_nested(levels))
    ingest, worker = outcome["ingest"], outcome["worker"]
    assert ingest is not None and worker is not None, outcome
    if worker.startswith("json: not valid JSON ("):  # past the JSON parser's own limit
        assert "recursion limit exceeded" in worker
        assert ingest == "body is not valid JSON: " + worker.removeprefix(
            "json: not valid JSON (").removesuffix(")")
    else:
        assert worker.endswith(f"nested deeper than {MAX_DATA_DEPTH} levels")
        assert ingest == worker == outcome["publisher"]


def test_the_worker_kinds_tell_json_from_shape() -> None:
    deep = decode_event(b"c1", _nested(1000), None, SOURCE, time.time())
    late = decode_event(b"c1", orjson.dumps(_event(at="9999-12-31T23:59:59Z")), None, SOURCE,
                        time.time())
    assert isinstance(deep, DeadLetter) and deep.kind == "json"
    assert isinstance(late, DeadLetter) and late.kind == "schema"


def test_a_received_header_out_of_bounds_is_a_header_dead_letter() -> None:
    raw = orjson.dumps(_event())
    for stamp in (b"9999-12-31T23:59:59-12:00", b"0001-01-01T00:30:00+01:00"):
        dead = decode_event(b"c1", raw, [(RECEIVED_HEADER, stamp)], SOURCE, time.time())
        assert isinstance(dead, DeadLetter) and dead.kind == "header", dead
        assert dead.reason.startswith(f"{RECEIVED_HEADER} header: {stamp.decode()} is ")


def test_python_values_that_are_not_json_are_refused_by_the_publisher() -> None:
    # ingest and the worker only ever see JSON: the publisher refuses what they cannot get
    cases = [({"when": datetime.now(UTC)}, "data.when: datetime is not a JSON value"),
             ({"set": {1}}, "data.set: set is not a JSON value"),
             ({"m": {1: "a"}}, "data.m: key 1 is not a string"),
             ({"n": float("nan")}, "data.n: nan is not a finite number"),
             ({"big": [2**70]}, "data.big[0]: integer of 71 bits, outside the signed 64-bit")]
    for data, reason in cases:
        with pytest.raises(EventValidationError) as caught:
            validate(_event(data=data))
        assert caught.value.reason.startswith(reason)


def test_a_reason_shows_keys_short_and_printable() -> None:
    with pytest.raises(EventValidationError) as caught:
        validate(_event(data={"a\nb" + "k" * 100: 2**64}))
    assert caught.value.reason == f"data.a?b{'k' * 37}: integer of 65 bits, outside the " \
                                  "signed 64-bit range"


def test_a_self_referencing_mapping_is_refused_not_a_recursion_error() -> None:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    with pytest.raises(EventValidationError, match="nested deeper than 32 levels"):
        validate(_event(data=loop))


# -- configurable bounds, threaded from the settings ------------------------------------
def test_the_bounds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TACT_EVENT_EARLIEST", "2020-01-01T00:00:00Z")
    monkeypatch.setenv("TACT_EVENT_MAX_AHEAD", "PT1H")
    bounds = EventBounds.from_settings(TactSettings())
    assert bounds == EventBounds(datetime(2020, 1, 1, tzinfo=UTC), timedelta(hours=1))


async def test_ingest_from_settings_applies_them() -> None:
    settings = TactSettings(api_token=TOKEN, event_earliest=datetime(2024, 6, 1, tzinfo=UTC),
                            event_max_ahead=timedelta(minutes=5))
    now = datetime(2024, 6, 10, tzinfo=UTC).timestamp()
    handler = IngestHandler.from_settings(settings, EncodingSink(), clock=lambda: now)

    async def reason(at: str) -> str | None:
        status, reply = await handler.handle(orjson.dumps(_event(at=at)), AUTH)
        return None if status == 202 else str(reply["errors"][0]["reason"])

    assert await reason("2024-06-10T00:05:00Z") is None
    assert await reason("2024-06-01T00:00:00Z") is None
    assert await reason("2024-06-10T00:05:01Z") == (
        "at: 2024-06-10T00:05:01+00:00 is after the latest accepted time 2024-06-10T00:05:00Z "
        "(now + TACT_EVENT_MAX_AHEAD, 0:05:00)")
    assert await reason("2024-05-31T23:59:59Z") == (
        "at: 2024-05-31T23:59:59+00:00 is before the earliest accepted time "
        "2024-06-01T00:00:00Z (TACT_EVENT_EARLIEST)")


def test_the_worker_window_is_the_batch_clock_plus_the_margin() -> None:
    bounds = EventBounds(max_ahead=timedelta(minutes=5))
    received = datetime(2024, 6, 10, tzinfo=UTC).timestamp()
    window = bounds.window(received)
    ok = orjson.dumps(_event(at="2024-06-10T00:05:00Z"))
    late = orjson.dumps(_event(at="2024-06-10T00:05:01Z"))
    assert not isinstance(decode_event(b"c1", ok, None, SOURCE, received, window), DeadLetter)
    assert isinstance(decode_event(b"c1", late, None, SOURCE, received, window), DeadLetter)


def test_read_jsonl_applies_the_publisher_bounds(tmp_path: Any) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(_event(at="2010-01-01T00:00:00Z")) + b"\n"
                     + orjson.dumps(_event(at="2030-01-01T00:00:00Z")) + b"\n")
    bounds = EventBounds(datetime(2005, 1, 1, tzinfo=UTC), timedelta(days=10 * 365))
    with path.open("rb") as stream:
        results = list(read_jsonl(stream, bounds))
    assert isinstance(results[0][1], Event) and isinstance(results[1][1], Event)
    with path.open("rb") as stream:
        refused = [r for _, r in read_jsonl(stream) if not isinstance(r, Event)]
    assert [r.reason[:45] for r in refused] == ["at: 2030-01-01T00:00:00+00:00 is after the la"]
