"""The worker's codecs on realistic data, against the alternatives (issue 13).

Data: a run of the load-test pack over the generator's events (``bench_io``'s path): the
event records, the decisions they made and the customers' states after them. Timed, in
microseconds per item (median of ``--repeat`` ``timeit`` runs, GC off):

* events: today's ``parse_event`` (pydantic-core JSON validation + the limits), pydantic-core
  validation alone, and msgspec typed ``Struct`` decoding (JSON), when msgspec is installed;
* decisions: ``DecisionRecord.to_json`` (orjson of the record's dict), msgspec JSON, and a
  pre-encoded prefix of the parts constant per (rule, channel, rules version);
* states: ``to_wire`` + msgpack ``packb`` (today), and ``ormsgpack`` / ``msgspec.msgpack``
  for the ``packb`` step; decoding: msgpack ``unpackb`` against the same.

The alternative libraries are optional: a missing one is skipped. To measure them without
adding them to the project, install them to a directory of their own::

    pip install --target /tmp/codec-libs msgspec ormsgpack
    PYTHONPATH=$PWD:/tmp/codec-libs python -m load_tests.bench_codecs
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

import msgpack
import orjson

from engine.models.decision import DecisionRecord
from engine.models.event import parse_event
from engine.models.limits import EventBounds
from engine.models.state import CustomerState
from engine.state.wire import unpack_stored
from load_tests.bench_io import PARTITIONS, Bench


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _time(fn: Callable[[], Any], items: int, repeat: int) -> float:
    """Median CPU microseconds per item of ``fn`` (which handles ``items`` items). CPU
    time, not wall time: the machine is shared, and a wait for the core is not the codec's."""
    gc.disable()
    try:
        runs = timeit.repeat(fn, number=1, repeat=repeat, timer=time.process_time)
    finally:
        gc.enable()
    return round(statistics.median(runs) / items * 1e6, 3)


async def _data(events: int) -> tuple[list[bytes], list[DecisionRecord], list[CustomerState]]:
    from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped,unused-ignore]

    from load_tests.bench_io import _records

    records = _records(events, 100_000, 42)
    bench = Bench(2000, "per-decision")
    decisions: list[DecisionRecord] = []
    original = bench.processor.process

    async def keep(pack: Any, ins: Any) -> Any:
        processed = await original(pack, ins)
        decisions.extend(processed.result.decisions)
        return processed

    bench.processor.process = keep  # type: ignore[method-assign,assignment]
    await bench.run(records, AIOKafkaProducer(bootstrap_servers="127.0.0.1:1"))
    states = [unpack_stored(v) for p in range(PARTITIONS)
              for v in bench.store._part(p).values.values()]
    return [v for _p, _k, v in records], decisions, states


def _events(raws: list[bytes], repeat: int) -> dict[str, float]:
    from engine.models.event import Event

    window = EventBounds().window()
    validator = Event.__pydantic_validator__
    out = {
        "parse_event (today)": _time(lambda: [parse_event(r, window) for r in raws],
                                     len(raws), repeat),
        "pydantic-core validate_json only": _time(
            lambda: [validator.validate_json(r) for r in raws], len(raws), repeat),
    }
    msgspec = _optional("msgspec")
    if msgspec is not None:
        from datetime import datetime
        from typing import Annotated

        ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]{0,199}\Z")]
        etype = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z")]
        aware = Annotated[datetime, msgspec.Meta(tz=True)]
        fields = [("id", ident), ("customer", ident), ("type", etype), ("at", aware),
                  ("data", dict[str, Any], msgspec.field(default_factory=dict))]
        struct = msgspec.defstruct("E", fields, forbid_unknown_fields=True)
        decoder = msgspec.json.Decoder(struct)
        out["msgspec Struct decode only"] = _time(lambda: [decoder.decode(r) for r in raws],
                                                  len(raws), repeat)

        def construct() -> list[Event]:
            got = []
            for r in raws:
                e = decoder.decode(r)
                got.append(Event.model_construct(id=e.id, customer=e.customer, type=e.type,
                                                 at=e.at, data=e.data))
            return got

        out["msgspec decode + Event.model_construct"] = _time(construct, len(raws), repeat)
    out["orjson.loads only (no validation)"] = _time(lambda: [orjson.loads(r) for r in raws],
                                                     len(raws), repeat)
    return out


def _decisions(decisions: list[DecisionRecord], repeat: int) -> dict[str, float]:
    out = {"DecisionRecord.to_json (orjson, today)": _time(lambda: [d.to_json() for d in decisions],
                                                     len(decisions), repeat)}
    msgspec = _optional("msgspec")
    if msgspec is not None:
        enc = msgspec.json.Encoder()
        out["msgspec.json encode of the dict"] = _time(
            lambda: [enc.encode(d.__dict__) for d in decisions], len(decisions), repeat)
    sent = sum(1 for d in decisions if d.outcome == "sent")
    out["share sent"] = round(sent / max(len(decisions), 1), 3)
    return out


def _states(states: list[CustomerState], repeat: int) -> dict[str, float]:
    wires = [s.to_wire() for s in states]
    blobs = [msgpack.packb(w, use_bin_type=True) for w in wires]
    n = len(states)
    out = {
        "to_wire": _time(lambda: [s.to_wire() for s in states], n, repeat),
        "msgpack.packb (today)": _time(lambda: [msgpack.packb(w, use_bin_type=True)
                                                for w in wires], n, repeat),
        "msgpack.unpackb (today)": _time(
            lambda: [msgpack.unpackb(b, raw=False, strict_map_key=False) for b in blobs],
            n, repeat),
        "from_wire": _time(lambda: [CustomerState.from_wire(
            msgpack.unpackb(b, raw=False, strict_map_key=False)) for b in blobs], n, repeat),
        "bytes per state": round(sum(map(len, blobs)) / n),
    }
    ormsgpack = _optional("ormsgpack")
    if ormsgpack is not None:
        out["ormsgpack.packb"] = _time(lambda: [ormsgpack.packb(w) for w in wires], n, repeat)
        out["ormsgpack.unpackb"] = _time(lambda: [ormsgpack.unpackb(b) for b in blobs], n,
                                         repeat)
        out["ormsgpack same bytes"] = float(all(ormsgpack.packb(w) == b
                                                for w, b in zip(wires, blobs, strict=True)))
    msgspec = _optional("msgspec")
    if msgspec is not None:
        enc, dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
        out["msgspec.msgpack encode"] = _time(lambda: [enc.encode(w) for w in wires], n, repeat)
        out["msgspec.msgpack decode"] = _time(lambda: [dec.decode(b) for b in blobs], n, repeat)
        out["msgspec same bytes"] = float(all(enc.encode(w) == b
                                              for w, b in zip(wires, blobs, strict=True)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m load_tests.bench_codecs")
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    raws, decisions, states = asyncio.run(_data(a.events))
    result = {"events": _events(raws, a.repeat), "decisions": _decisions(decisions, a.repeat),
              "states": _states(states, a.repeat),
              "counts": {"events": len(raws), "decisions": len(decisions),
                         "states": len(states)}}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
