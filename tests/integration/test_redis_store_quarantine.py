"""Undecodable states against a real Redis and the local Redis Cluster: the quarantine, and
`tact state show|repair|reset` (through the CLI) leaving the customer processable.

Every test works under its own key prefix and deletes its keys (``conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import msgpack
import pytest
import redis
import redis.asyncio
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.config import TactSettings
from engine.models.state import WIRE_VERSION, CustomerState, SentRecord
from engine.state.base import BatchRead, PartitionWrite
from engine.state.redis import RedisStateStore
from engine.state.wire import pack_stored, unpack_stored
from tests.integration.redis_utils import Admin, Target, encoded

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

_register()
runner = CliRunner()
T = TypeVar("T")


def _good(customer: str, version: int = 3) -> bytes:
    st = CustomerState(customer, consent={"push": True}, counters={"n": 2},
                       history=[SentRecord("m", "push", "promotion", 100.0)])
    return pack_stored(st, version)


def _wrong_type(customer: str) -> bytes:
    """Consent of the wrong type in the middle, the rest sound."""
    wire = CustomerState(customer, attributes={"tier": "gold"}, counters={"n": 2}).to_wire()
    wire[4] = {"push": "yes", "email": False}
    return b"%016x" % 5 + msgpack.packb(wire, use_bin_type=True)


def _newer(customer: str) -> bytes:
    wire = CustomerState(customer).to_wire()
    wire[0] = WIRE_VERSION + 6
    return b"%016x" % 2 + msgpack.packb(wire, use_bin_type=True)


async def test_read_quarantines_what_does_not_decode_and_copies_it(
    any_store: RedisStateStore, any_admin: Admin
) -> None:
    store, admin = any_store, any_admin
    bad = {"c-type": _wrong_type("c-type"), "c-new": _newer("c-new"),
           "c-cut": _good("c-cut")[:-3], "c-other": _good("c-someone-else")}
    where = {c: i % 3 for i, c in enumerate(bad)}  # several partitions (cluster slots)
    for c, value in bad.items():
        admin.set(store.state_key(c, where[c]), value)
    admin.set(store.state_key("c-ok", 1), _good("c-ok"))
    admin.set(store.quarantine_key("c-ok", 1), b"an old copy: blocks nothing")
    trips = store.round_trips
    got = await store.read({"c-ok": 1, "c-fresh": 2, **where})
    assert store.round_trips == trips + 2  # the read, then the copies
    assert set(got.states) == {"c-ok", "c-fresh"}
    assert got.states["c-ok"].consent == {"push": True}
    assert got.quarantined == {
        "c-type": "state_corrupt: malformed field consent: expected a map of booleans",
        "c-new": "state_corrupt: unsupported wire version 7 (written by a newer release)",
        "c-cut": "state_corrupt: not msgpack: ValueError",
        "c-other": "state_corrupt: holds another customer's state",
    }
    for c, value in bad.items():
        assert admin.get(store.quarantine_key(c, where[c])) == value
        assert admin.get(store.state_key(c, where[c])) == value  # left in place
    # the first copy stays; a clean read costs its one round trip only
    admin.set(store.state_key("c-new", where["c-new"]), _newer("c-new") + b"\x00")
    assert (await store.read({"c-new": where["c-new"]})).quarantined.keys() == {"c-new"}
    assert admin.get(store.quarantine_key("c-new", where["c-new"])) == bad["c-new"]
    trips = store.round_trips
    assert (await store.read({"c-ok": 1, "c-fresh": 2})).quarantined == {}
    assert store.round_trips == trips + 1
    assert set(await store.load(["c-fresh", "c-type"], where["c-type"])) == {"c-fresh"}


def _cli(redis_url: str, prefix: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["state", *args, "--redis-url", redis_url,
                                 "--redis-prefix", prefix])
    return result.exit_code, result.output


def _with_store(target: Target, prefix: str,
                action: Callable[[RedisStateStore], Awaitable[T]]) -> T:
    """Run ``action`` on a store of its own (the CLI runs its own event loop: sync tests)."""
    async def go() -> T:
        store = RedisStateStore.from_settings(target.settings(), prefix=prefix)
        try:
            return await action(store)
        finally:
            await store.close()
    return asyncio.run(go())


def _read(customer: str) -> Callable[[RedisStateStore], Awaitable[BatchRead]]:
    """What the worker does: read the customer in its partition (the events' key's)."""
    return lambda s: s.read({customer: s.partition_of(customer)})


def _save(st: CustomerState) -> Callable[[RedisStateStore], Awaitable[set[int]]]:
    return lambda s: s.write({s.partition_of(st.customer): PartitionWrite(
        {st.customer: encoded(st, st.version + 1)})})


def test_cli_show_and_repair_make_the_customer_processable(
    target: Target, any_admin: Admin, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, redis_url = any_admin, target.url
    if target.cluster:  # the CLI's settings come from the environment
        monkeypatch.setenv("TACT_REDIS_CLUSTER", "true")
    keys = RedisStateStore(redis.asyncio.Redis(), prefix=prefix,
                           partitions=TactSettings().events_partitions)  # key names only
    state_key, quarantine_key = keys.state_key("c-1"), keys.quarantine_key("c-1")
    raw = _wrong_type("c-1")
    admin.set(state_key, raw)
    _with_store(target, prefix, _read("c-1"))  # the worker met it
    code, out = _cli(redis_url, prefix, "show", "c-1")
    shown = json.loads(out)
    assert code == 0 and shown["status"] == "corrupt" and shown["quarantine_copy_bytes"] == len(raw)
    assert shown["reason"] == "malformed field consent: expected a map of booleans"
    code, out = _cli(redis_url, prefix, "repair", "c-1", "--dry-run")
    assert code == 0 and "would write version 6" in out
    assert admin.get(state_key) == raw
    code, out = _cli(redis_url, prefix, "repair", "c-1")
    assert code == 0, out
    assert "wrote version 6" in out and "dropped consent: 1 of 2 entries dropped" in out
    got = _with_store(target, prefix, _read("c-1"))
    assert got.quarantined == {}
    st = got.states["c-1"]
    assert (st.version, st.consent, st.attributes, st.counters) == (
        6, {"email": False}, {"tier": "gold"}, {"n": 2})
    assert 0 < admin.ttl(state_key) <= TactSettings().state_ttl_seconds  # the CLI's settings
    assert admin.get(quarantine_key) == raw  # kept for reference
    st.counters["n"] += 1
    assert _with_store(target, prefix, _save(st)) == set()
    assert unpack_stored(admin.get(state_key)).counters == {"n": 3}  # type: ignore[arg-type]
    code, out = _cli(redis_url, prefix, "repair", "c-1")
    assert code == 0 and "nothing to repair" in out
    code, out = _cli(redis_url, prefix, "show", "c-1")
    assert json.loads(out)["state"]["counters"] == {"n": 3}


def test_cli_repair_refuses_a_newer_version_and_reset_starts_afresh(
    target: Target, any_admin: Admin, prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, redis_url = any_admin, target.url
    if target.cluster:
        monkeypatch.setenv("TACT_REDIS_CLUSTER", "true")
    keys = RedisStateStore(redis.asyncio.Redis(), prefix=prefix,
                           partitions=TactSettings().events_partitions)  # key names only
    state_key, quarantine_key = keys.state_key("c-1"), keys.quarantine_key("c-1")
    raw = _newer("c-1")
    admin.set(state_key, raw)
    code, out = _cli(redis_url, prefix, "repair", "c-1")
    assert code == 1 and "unsupported wire version 7" in out
    assert admin.get(state_key) == raw
    code, _ = _cli(redis_url, prefix, "reset", "c-1")  # not confirmed (no input)
    assert code == 1 and admin.get(state_key) == raw
    backup = tmp_path / "c-1.bin"
    code, out = _cli(redis_url, prefix, "reset", "c-1", "--yes", "--backup", str(backup))
    assert code == 0, out
    assert admin.exists(state_key) == 0
    assert admin.get(quarantine_key) == raw and backup.read_bytes() == raw
    got = _with_store(target, prefix, _read("c-1"))
    assert got.quarantined == {} and got.states["c-1"] == CustomerState("c-1")
    assert _with_store(target, prefix, _save(got.states["c-1"])) == set()
    code, _ = _cli(redis_url, prefix, "reset", "c-1", "--yes", "--purge")
    assert code == 0
    assert admin.exists(state_key, quarantine_key) == 0


def test_cli_reports_redis_failures(prefix: str) -> None:
    code, out = _cli("redis://127.0.0.1:1/0", prefix, "show", "c-1")
    assert code == 2 and "state command failed" in out
