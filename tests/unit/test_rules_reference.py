"""docs/rules.md: generated from the schema and the function registry, current, complete,
and its examples load; the follow-up behaviour it describes is the engine's."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML
from typer.testing import CliRunner

from engine.cli import _register, app
from engine.dsl.functions import FUNCTIONS
from engine.pack import schema as S
from engine.pack.loader import load_pack
from engine.pack.reference import render, section_names, signature
from engine.pack.reference_examples import EXAMPLES
from engine.testing import Harness
from tests.conftest import REPO

_register()
runner = CliRunner()
DOC = REPO / "docs" / "rules.md"


def test_docs_file_is_current() -> None:
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == render(), "docs/rules.md is stale: run tact rules docs --write docs/rules.md"


def test_cli_prints_and_writes_the_reference(tmp_path: Path) -> None:
    printed = runner.invoke(app, ["rules", "docs"])
    assert printed.exit_code == 0, printed.output
    assert printed.output == render()
    target = tmp_path / "rules.md"
    written = runner.invoke(app, ["rules", "docs", "--write", str(target)])
    assert written.exit_code == 0, written.output
    assert target.read_text(encoding="utf-8") == render()


def test_every_function_appears_with_its_signature_and_null_behaviour() -> None:
    doc = render()
    for name, spec in FUNCTIONS.items():
        assert spec.doc and spec.nulls, f"{name}: add doc= and nulls= to its FunctionSpec"
        assert len(spec.args) == len(spec.params), f"{name}: one name in args= per parameter"
        assert f"| `{signature(spec)}` |" in doc, name
    assert "| `round(number, [n])` |" in doc
    assert "| `local_hour([time])` |" in doc
    assert "| `min(number, ...)` |" in doc


def _models(hint: object) -> list[type[BaseModel]]:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return [hint]
    return [m for a in typing.get_args(hint) for m in _models(a)]


def test_every_section_and_field_appears_with_a_description() -> None:
    doc = render()
    assert section_names() == list(S.RuleFile.model_fields)
    todo = [S.RuleFile]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name}: add description="
            if model is S.RuleFile:
                assert f"### `{name}`" in doc, name
            else:
                assert f"| `{info.alias or name}` |" in doc, f"{model.__name__}.{name}"
        for hint in typing.get_type_hints(model, include_extras=True).values():
            todo.extend(_models(hint))
    for model in seen - {S.RuleFile}:
        assert f"**{model.__name__}**" in doc, model.__name__


@pytest.mark.parametrize("section", sorted(S.RuleFile.model_fields))
def test_each_section_has_an_example_that_loads(section: str, tmp_path: Path) -> None:
    example = EXAMPLES[section]
    assert list(YAML(typ="safe").load(example.yaml)) == [section], "shows its section alone"
    (tmp_path / "example.yaml").write_text(example.yaml, encoding="utf-8")
    if example.setup:
        (tmp_path / "setup.yaml").write_text(example.setup, encoding="utf-8")
    load_pack([tmp_path])  # raises RulePackError, with file:line:col, if it does not load
    assert f"```yaml\n{example.yaml}```" in render()


def test_readme_links_the_reference() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    writing = readme[readme.index("## Writing rules"):]
    assert "docs/rules.md" in writing[: writing.index("\n## ", 3)]


def _writing_rules() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    writing = readme[readme.index("## Writing rules"):]
    return writing[: writing.index("\n## ", 3)]


def test_readme_lists_every_function() -> None:
    writing = _writing_rules()
    listed = writing[writing.index("Functions: `") + 12:writing.index("`, and the weekday")]
    assert sorted(listed.split()) == sorted(FUNCTIONS)


def test_readme_introduces_keyed_state_maps_and_campaigns() -> None:
    writing = " ".join(_writing_rules().split())  # as read, not as wrapped
    for shown in ("counter('failed_deliveries', event.data.parcel)",
                  "timestamp('last_failed_delivery', event.data.parcel)",
                  "customer.maps.last_viewed_price[event.data.sku]", "campaigns:",
                  "docs/campaigns.md", 'docs/rules.md, "Maps"', 'docs/rules.md, "Keys"'):
        assert shown in writing, shown


# What "Follow-ups: restart, not stack" says, held to the engine.
_PACK = """
channels: [push]
events:
  cart_updated: {data: {items: int}}
  purchase: {}
  segment_changed: {data: {segment: str}}
attributes: {segment: str}
updates:
  - {on: segment_changed, set: {segment: event.data.segment}}
messages:
  reminder: {category: promotion, channels: [push], params: {items: event.data.items}}
rules:
  - {id: remind, on: cart_updated, when: customer.attributes.segment == "new", after: 30m,
     unless: [purchase], send: reminder}
"""


@pytest.fixture
def h() -> typing.Iterator[Harness]:
    harness = Harness.from_text(_PACK)
    harness.customer("c1", attributes={"segment": "new"}, consent={"push": True})
    yield harness
    harness.close()


def test_follow_ups_restart_not_stack(h: Harness) -> None:
    for items in (1, 2, 3):
        h.emit("c1", "cart_updated", {"items": items})
        h.clock.advance("5m")
    assert len(h.state("c1").followups) == 1
    assert h.advance("24m") == []  # due 30m after the last update (10m), not the first
    (d,) = h.advance("1m")
    assert d.params == {"items": 3}


def test_when_is_not_checked_again_when_a_follow_up_fires(h: Harness) -> None:
    h.emit("c1", "cart_updated", {"items": 1})
    h.emit("c1", "segment_changed", {"segment": "vip"})  # the condition no longer holds
    assert h.state("c1").attributes["segment"] == "vip"
    (d,) = h.advance("30m")
    assert d.outcome == "sent"


def test_an_unless_event_dated_at_the_due_time_comes_too_late(h: Harness) -> None:
    h.emit("c1", "cart_updated", {"items": 1})
    h.clock.advance("30m")  # no tick: the purchase is dated exactly at the due time
    (d,) = h.emit("c1", "purchase")
    assert d.message == "reminder" and d.outcome == "sent"
