"""Issue 9, item 8: the event decoder and ingest under generated input (Hypothesis).

For every input: no exception escapes but the documented one (``EventValidationError`` from
the publisher; ingest answers, the worker's decoder dead-letters), and HTTP ingest, the
publisher (from bytes and from a mapping) and the worker's decoder accept exactly the same
events, and refuse the others with the same reason. An accepted event survives the trip
through Kafka's encoding, msgpack (customer state) and local-time arithmetic.

Examples per test: ``TACT_FUZZ_EXAMPLES`` (default 300, about 10 s in all, for CI; e.g.
5000 for a long run).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.http import IngestHandler
from connectors.kafka.publisher import encode_event, validate
from engine.errors import EventValidationError
from engine.models.event import Envelope, Event
from engine.models.limits import INT64_MAX, INT64_MIN, MAX_DATA_BYTES, MAX_DATA_DEPTH, EventBounds
from engine.worker.codec import DeadLetter, Source, decode_event

settings.register_profile(
    "tact-fuzz",
    max_examples=int(os.environ.get("TACT_FUZZ_EXAMPLES", "300")),
    deadline=None,  # a 64 KiB or 1,000-level input takes a few ms; the machine is shared
    database=None,  # no .hypothesis/ directory in the tree; failures print their example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FUZZ = settings.get_profile("tact-fuzz")

# A fixed clock: the window of `at` depends on it, and all paths must see the same one.
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()
WINDOW = EventBounds().window(NOW)
SOURCE = Source("tact.events", 0, 0, 0)
TOKEN = "fuzz-token"

Outcome = tuple[bool, Any]  # (accepted, the event or the refusal reason)


class Sink:
    async def __call__(self, events: Sequence[Event]) -> None:
        self.events = list(events)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (the handler with an in-memory sink) without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the ingest handler waited on something")


def ingest(body: bytes) -> tuple[int, dict[str, Any], list[Event]]:
    sink = Sink()
    handler = IngestHandler(sink, token=TOKEN, max_batch=1000, max_body_bytes=16 * 2**20,
                            clock=lambda: NOW)
    status, reply = _run(handler.handle(body, f"Bearer {TOKEN}"))
    assert status in (202, 400), (status, reply)  # never a 503 "retry" for bad input
    return status, reply, getattr(sink, "events", [])


def publisher(raw: bytes | dict[str, Any]) -> Outcome:
    try:
        return True, validate(raw, WINDOW)
    except EventValidationError as exc:
        return False, exc.reason


def worker(raw: bytes) -> Outcome:
    try:
        customer = orjson.loads(raw).get("customer")
        key = customer.encode() if isinstance(customer, str) else b""
    except (orjson.JSONDecodeError, AttributeError, UnicodeEncodeError):
        key = b""
    decoded = decode_event(key, raw, None, SOURCE, NOW, WINDOW)
    if isinstance(decoded, DeadLetter):
        assert decoded.kind in ("json", "schema"), decoded  # the key is the customer's
        return False, decoded.reason
    return True, decoded.event


def ingest_single(raw: bytes) -> Outcome:
    """Ingest's verdict on a body that is not an array, in the worker's words."""
    status, reply, events = ingest(raw)
    if status == 202:
        assert len(events) == 1
        return True, events[0]
    if "errors" in reply:
        return False, reply["errors"][0]["reason"]
    error = reply["error"]
    if error.startswith("body is not valid JSON: "):
        return False, f"json: not valid JSON ({error.removeprefix('body is not valid JSON: ')})"
    assert error == "body must be an event object or an array of events", error
    return False, "<event>: expected a JSON object"


def accepted_event_is_sound(event: Event) -> None:
    """What the worker does with an accepted event must not fail on its values."""
    wire = encode_event(event)
    again = decode_event(event.customer.encode(), wire, None, SOURCE, NOW, WINDOW)
    assert isinstance(again, Envelope) and again.event == event, again
    msgpack.packb(event.data)  # customer state
    for zone in (timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))):
        local = event.at.astimezone(zone)  # quiet hours, follow-ups: must not overflow
        assert local - timedelta(days=2) < local < local + timedelta(days=2)


def same_on_every_path(raw: bytes, value: Any = None) -> Outcome:
    """The assertion of this module, for one input that is not a JSON array."""
    via_ingest = ingest_single(raw)
    via_worker = worker(raw)
    via_publisher = publisher(raw)
    assert via_ingest == via_worker == via_publisher, (via_ingest, via_worker, via_publisher)
    if isinstance(value, dict):
        via_mapping = publisher(value)
        if str(via_worker[1]).startswith("json: not valid JSON"):  # e.g. nested past the
            assert not via_mapping[0], via_mapping  # parser's limit: no parser for a mapping
        else:
            assert via_mapping == via_worker, (via_mapping, via_worker)
    if via_worker[0]:
        accepted_event_is_sound(via_worker[1])
    event(_verdict(via_worker))  # shown by --hypothesis-show-statistics
    return via_worker


def _verdict(outcome: Outcome) -> str:
    """A coarse label of an outcome, to see what the generated inputs exercise."""
    accepted, detail = outcome
    if accepted:
        return "accepted"
    field = detail.partition(":")[0].partition(".")[0].partition("[")[0]
    for problem in ("after the latest", "before the earliest", "64-bit", "finite", "nested",
                    "compact JSON", "not a JSON value", "recursion limit", "not valid JSON"):
        if problem in detail:
            return f"refused: {field}: {problem}"
    return f"refused: {field}: model"


# -- strategies -----------------------------------------------------------------------
EDGE_INTS = st.sampled_from([INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2**64 - 1,
                             2**64, -(2**64), 10**30, 0, -1])
EDGE_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, 1.7976931348623157e308, -0.0,
                               5e-324])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), EDGE_INTS, st.floats(), EDGE_FLOATS,
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=24,
)


def _nest(levels: int, leaf: Any, as_list: bool) -> Any:
    for _ in range(levels):
        leaf = [leaf] if as_list else {"k": leaf}
    return leaf


deep = st.builds(_nest, st.integers(MAX_DATA_DEPTH - 3, 1100), scalars, st.booleans())
# around the size limit: {"s": "..."} is the string plus 8 bytes
long_strings = st.integers(MAX_DATA_BYTES - 12, MAX_DATA_BYTES - 4).map(lambda n: "x" * n)
data_values = st.one_of(
    st.dictionaries(st.text(max_size=6), json_values, max_size=5),
    st.builds(lambda v: {"v": v}, deep),
    st.builds(lambda s: {"s": s}, long_strings),
    json_values,  # mostly not an object: refused
)

EXTREMES = [datetime(1, 1, 1, 0, 30), datetime(9999, 12, 31, 23, 59, 59),
            datetime(1999, 12, 31, 23, 59, 59), datetime(2000, 1, 1),
            datetime.fromtimestamp(WINDOW.latest, UTC).replace(tzinfo=None)]
offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.one_of(st.datetimes(), st.sampled_from(EXTREMES)).flatmap(
    lambda d: st.one_of(
        st.builds(lambda tz: d.replace(tzinfo=tz).isoformat(), offsets),
        st.just(d.isoformat() + "Z"),
        st.just(d.isoformat()),  # no offset: refused
        st.builds(lambda s: (d + timedelta(seconds=s)).isoformat() + "+00:00",
                  st.integers(-2, 2)) if d.year < 9999 else st.just(d.isoformat() + "Z"),
    ))
at_values = st.one_of(instants, instants, instants, st.text(max_size=30), st.integers(),
                      st.floats(), st.none())
ids = st.one_of(st.just("e1"), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,8}",
                                             fullmatch=True), st.text(max_size=4))
types = st.one_of(st.just("app_open"), st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                  st.text(max_size=4))
good_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,8}", fullmatch=True)
good_types = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
good_at = st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(),
                    st.datetimes(datetime(2000, 1, 3), datetime(2027, 11, 28)), offsets)
# one part fuzzed at a time, so that the model's own refusals do not hide the bounds
events = st.one_of(
    st.fixed_dictionaries({"id": good_ids, "customer": good_ids, "type": good_types,
                           "at": good_at, "data": data_values}),
    st.fixed_dictionaries({"id": good_ids, "customer": good_ids, "type": good_types,
                           "at": at_values}, optional={"data": data_values}),
    st.fixed_dictionaries({"id": ids, "customer": ids, "type": types, "at": at_values},
                          optional={"data": data_values, "extra": scalars}),
)


def dumps(value: Any, ascii_only: bool) -> bytes:
    """Any value as JSON text, NaN, infinities and integers of any size included."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# -- the properties -------------------------------------------------------------------
@FUZZ
@given(event=events, ascii_only=st.booleans())
def test_near_valid_events_are_judged_alike_on_every_path(
    event: dict[str, Any], ascii_only: bool
) -> None:
    same_on_every_path(dumps(event, ascii_only), event)


@FUZZ
@given(value=json_values)
def test_any_json_value_is_judged_alike(value: Any) -> None:
    raw = dumps(value, True)
    if isinstance(value, list):  # a batch for ingest: see the batch property
        return
    accepted, _ = same_on_every_path(raw, value)
    assert not accepted or isinstance(value, dict)


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_judged_alike(raw: bytes) -> None:
    try:
        if isinstance(orjson.loads(raw), list):
            return
    except orjson.JSONDecodeError:
        pass
    same_on_every_path(raw)


VALID = orjson.dumps({"id": "e1", "customer": "c1", "type": "app_open",
                      "at": "2026-05-01T09:30:00+02:00",
                      "data": {"n": 9223372036854775807, "f": 1.5, "s": "x", "l": [{}]}})


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(VALID)), st.binary(max_size=3),
                                st.integers(0, 3)), min_size=1, max_size=4))
def test_a_mutated_valid_event_is_judged_alike(edits: list[tuple[int, bytes, int]]) -> None:
    raw = VALID
    for position, inserted, deleted in edits:  # splice: delete some bytes, insert others
        raw = raw[:position] + inserted + raw[position + deleted:]
    try:
        if isinstance(orjson.loads(raw), list):
            return
    except orjson.JSONDecodeError:
        pass
    same_on_every_path(raw)


@FUZZ
@given(batch=st.lists(events, min_size=1, max_size=6))
def test_a_batch_is_accepted_only_if_the_worker_takes_each_event(
    batch: list[dict[str, Any]]
) -> None:
    status, reply, sent = ingest(dumps(batch, True))
    verdicts = [worker(dumps(event, True)) for event in batch]
    if status == 202:
        assert all(ok for ok, _ in verdicts)
        assert sent == [event for _, event in verdicts]
    else:
        assert sent == []
        refused = [(i, reason) for i, (ok, reason) in enumerate(verdicts) if not ok]
        if "errors" not in reply:  # the array's level takes a deep event past the parser's
            assert reply["error"].startswith("body is not valid JSON: recursion limit")
            assert refused
            return
        assert [(e["index"], e["reason"]) for e in reply["errors"]] == refused
