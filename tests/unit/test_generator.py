"""The load-test event generator and the load-test rule pack."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from ruamel.yaml import YAML

from engine.errors import EventValidationError
from engine.models import Envelope, parse_event
from engine.pack.loader import load_pack
from engine.pipeline import decide
from load_tests.baselines import PACK_DIR, pack_rules, write_pack
from load_tests.generator import MIX, generate_events, kafka_key, main

ROOT = Path(__file__).resolve().parents[2]
START = 1_780_000_000.0


def _catalog() -> dict[str, dict[str, str]]:
    doc: Any = YAML(typ="safe").load((ROOT / "rules" / "catalog.yaml").read_text())
    return {name: (spec or {}).get("data") or {} for name, spec in doc["events"].items()}


def _valid(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    ok, bad = [], 0
    for ev in events:
        try:
            parse_event(ev)
        except EventValidationError:
            bad += 1
        else:
            ok.append(ev)
    return ok, bad


def test_deterministic_with_a_seed() -> None:
    a = list(generate_events(2000, 300, seed=7, start_time=START))
    b = list(generate_events(2000, 300, seed=7, start_time=START))
    c = list(generate_events(2000, 300, seed=8, start_time=START))
    assert a == b
    assert a != c


def test_all_events_valid_without_invalid_ratio() -> None:
    events = list(generate_events(5000, 1000, seed=1, start_time=START))
    ok, bad = _valid(events)
    assert bad == 0
    assert len({e["id"] for e in ok}) == len(ok)  # ids are unique (the worker dedupes)


@pytest.mark.parametrize("ratio", [0.005, 0.05])
def test_invalid_ratio_is_respected(ratio: float) -> None:
    n = 40_000
    events = list(generate_events(n, 5000, seed=3, start_time=START, invalid_ratio=ratio))
    _, bad = _valid(events)
    assert abs(bad / n - ratio) < ratio * 0.3, bad
    assert all(isinstance(e.get("id"), str) for e in events)  # dead letters can be joined
    assert all(kafka_key(e) for e in events)


def test_types_cover_the_catalog_with_valid_data() -> None:
    catalog = _catalog()
    assert set(MIX) == set(catalog)
    events = list(generate_events(20_000, 2000, seed=5, start_time=START))
    assert {e["type"] for e in events} == set(catalog)
    python_types: dict[str, type | tuple[type, ...]] = {
        "str": str, "int": int, "number": (int, float), "map": dict}
    for ev in events:
        fields = catalog[ev["type"]]
        assert set(ev["data"]) <= set(fields), ev
        for name, value in ev["data"].items():
            assert isinstance(value, python_types[fields[name]]), (ev, name)
    profiles = [e["data"] for e in events if e["type"] == "profile_updated"]
    assert all({"tz", "segment"} <= set(p["attributes"]) and p["consent"] for p in profiles)


def test_mix_is_mostly_opens_views_and_carts() -> None:
    events = list(generate_events(10_000, 2000, seed=2, start_time=START))
    common = sum(e["type"] in ("app_open", "product_viewed", "cart_updated") for e in events)
    assert 0.6 < common / len(events) < 0.8


def test_times_increase_and_customers_stay_in_range() -> None:
    events = [parse_event(e) for e in generate_events(3000, 50, seed=4, start_time=START,
                                                      step=0.002)]
    times = [e.ts for e in events]
    assert all(b > a for a, b in pairwise(times))
    assert times[0] == pytest.approx(START)
    assert {e.customer for e in events} <= {f"c{k:06d}" for k in range(50)}


def test_cli_writes_jsonl(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    assert main(["--events", "200", "--customers", "20", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 200
    _, bad = _valid([orjson.loads(line) for line in lines])
    assert bad == 0


def test_loadtest_pack_is_in_sync_and_decides_for_every_event(tmp_path: Path) -> None:
    write_pack(tmp_path)
    assert (tmp_path / "rules.yaml").read_text() == (PACK_DIR / "rules.yaml").read_text()
    assert len(pack_rules()) == 200
    pack = load_pack(PACK_DIR)
    assert len(pack.rules) == 200
    envs = []
    for ev in generate_events(3000, 500, seed=9, start_time=START):
        e = parse_event(ev)
        envs.append(Envelope(e, e.ts + 0.05))
    result = decide(pack, {}, envs)
    assert all(o.status == "processed" and o.decisions for o in result.outcomes)
