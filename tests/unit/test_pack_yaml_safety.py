"""Rule files refuse YAML tags, anchors and aliases, and oversized files or packs, with
file:line:col -- in `load_pack` and in the worker's hot reload."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from engine.errors import RulePackError
from engine.pack.loader import load_pack, load_pack_text
from engine.worker.reload import PackWatcher
from tests.conftest import RULES

RULE = """\
messages:
  promo: {category: promotion, channels: [push]}
rules:
  - id: the_rule
    on: app_open
"""

# ~390 bytes that expand to 10**10 strings when constructed
LAUGHS = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{chr(c + 1)}: &{chr(c + 1)} [{','.join(['*' + chr(c)] * 10)}]\n"
    for c in range(ord("a"), ord("j"))
)


def _rejected(tmp_path: Path, body: str, name: str = "pack.yaml") -> str:
    (tmp_path / name).write_text(body, encoding="utf-8")
    with pytest.raises(RulePackError) as info:
        load_pack(tmp_path)
    return info.value.issues[0].render()


@pytest.mark.parametrize(
    ("when", "col", "shown"),
    [
        ("    when: !!python/name:os.system\n", 11, "python/name:os.system"),
        ("    when: !foo event.type == 'x'\n", 11, "'!foo'"),
        ("    when: !!str event.type == 'x'\n", 11, "2002:str"),
    ],
)
def test_a_tag_is_an_error_with_its_position(
    tmp_path: Path, when: str, col: int, shown: str
) -> None:
    out = _rejected(tmp_path, RULE + when + "    send: promo\n")
    assert out.startswith(f"{tmp_path / 'pack.yaml'}:6:{col}: error: YAML tags are not allowed")
    assert shown in out
    assert out.splitlines()[2].index("^") - 4 == col - 1


def test_a_tagged_mapping_is_an_error(tmp_path: Path) -> None:
    out = _rejected(tmp_path, "settings: !foo\n  dedupe_window: 1h\n" + RULE + "    send: promo\n")
    assert f"{tmp_path / 'pack.yaml'}:1:11: error: YAML tags are not allowed" in out


@pytest.mark.parametrize(
    ("body", "line", "col"),
    [
        (RULE + "    send: &m promo\n  - {id: b, on: x, send: *m}\n", 6, 11),
        ("base: &b {on: app_open}\n" + RULE + "    send: promo\n", 1, 7),
        (RULE + "    send: promo\n  - <<: {id: c}\n    on: x\n    send: *x\n", 9, 11),
    ],
)
def test_anchors_and_aliases_are_refused_with_the_reason(
    tmp_path: Path, body: str, line: int, col: int
) -> None:
    out = _rejected(tmp_path, body)
    assert out.startswith(f"{tmp_path / 'pack.yaml'}:{line}:{col}: error: YAML anchors and aliases")
    assert "billion laughs" in out


@pytest.mark.timeout(20)  # before the fix: 40 s and a MemoryError
def test_billion_laughs_is_rejected_in_well_under_a_second(tmp_path: Path) -> None:
    assert len(LAUGHS) < 450
    start = time.perf_counter()
    out = _rejected(tmp_path, LAUGHS)
    assert time.perf_counter() - start < 1.0
    assert f"{tmp_path / 'pack.yaml'}:1:4: error: YAML anchors and aliases" in out
    with pytest.raises(RulePackError):
        load_pack_text(LAUGHS)


@pytest.mark.timeout(20)
def test_hot_reload_rejects_billion_laughs_fast_and_keeps_serving(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    watcher = PackWatcher(rules)
    serving = watcher.load_initial().version
    (rules / "laughs.yaml").write_text(LAUGHS, encoding="utf-8")
    start = time.perf_counter()
    outcome = asyncio.run(watcher.reload())
    assert time.perf_counter() - start < 1.0
    assert not outcome.ok and outcome.version == serving
    assert watcher.pack.version == serving
    assert any("laughs.yaml:1:4" in e and "anchors and aliases" in e for e in outcome.errors)


def test_a_file_over_the_size_cap_is_rejected_by_name(tmp_path: Path) -> None:
    body = RULE + "    send: promo\n" + "# padding\n" * 200
    (tmp_path / "big.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RulePackError) as info:
        load_pack(tmp_path, max_file_bytes=1000)
    out = info.value.issues[0].render()
    assert out.startswith(f"{tmp_path / 'big.yaml'}:1:1: error: rule file over the 1000-byte")
    assert load_pack(tmp_path, max_file_bytes=len(body)).rules  # at the cap: fine


def test_the_default_file_cap_is_enforced(tmp_path: Path) -> None:
    body = RULE + "    send: promo\n" + "#" * (1024 * 1024) + "\n"
    out = _rejected(tmp_path, body, "huge.yaml")
    assert f"{tmp_path / 'huge.yaml'}:1:1: error: rule file over the 1048576-byte limit" in out
    with pytest.raises(RulePackError, match="over the 1048576-byte limit"):
        load_pack_text(body)


def test_a_pack_over_the_size_cap_is_rejected_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("messages:\n  promo: {category: p, channels: [push]}\n")
    (tmp_path / "b.yaml").write_text(RULE[RULE.index("rules:"):] + "    send: promo\n")
    total = sum(f.stat().st_size for f in tmp_path.iterdir())
    assert load_pack(tmp_path, max_pack_bytes=total).rules
    with pytest.raises(RulePackError) as info:
        load_pack(tmp_path, max_pack_bytes=total - 1)
    out = info.value.issues[0].render()
    assert out.startswith(f"{tmp_path / 'b.yaml'}:1:1: error: rule pack over the")


def test_the_example_packs_load() -> None:
    assert load_pack(RULES).rules
    assert load_pack(RULES.parent / "load_tests" / "packs" / "loadtest").rules


def test_deep_nesting_is_refused_without_recursing(tmp_path: Path) -> None:
    out = _rejected(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert f"{tmp_path / 'pack.yaml'}:1:" in out
    assert "YAML nested more than 64 levels deep" in out.splitlines()[0]
