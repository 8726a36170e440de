"""Scenario and starting-state files: read with positions, errors at file:line:col.

The same position-keeping reader as rule files (engine/pack/source.py), with tags, anchors
and aliases refused the same way.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from engine.errors import RuleIssue, ScenarioError
from engine.models.seed import CustomerSeed, SeedError
from engine.pack.locate import data_path
from engine.pack.source import Path_, SourceFile, read_source

CUSTOMERS: TypeAdapter[dict[str, CustomerSeed]] = TypeAdapter(dict[str, CustomerSeed])


def read_yaml(path: str | Path) -> SourceFile:
    """One scenario-format YAML (or JSON) file, or a ScenarioError with its position."""
    src, issue = read_source(Path(path), kind="scenario")
    if issue is not None or src is None:
        raise ScenarioError(issue.render() if issue else f"{path}: cannot read")
    src.data = _builtin(src.data)
    return src


def _builtin(value: Any) -> Any:
    """ruamel's round-trip numbers and times as the built-in types: event data must encode
    as JSON, and a scenario's decisions must not depend on how a number was spelled."""
    if isinstance(value, dict):
        return {k: _builtin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_builtin(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime):
        return datetime.fromisoformat(value.isoformat())
    return value


def located(src: SourceFile | None, path: Path_, message: str) -> ScenarioError:
    """An error at ``path`` in ``src``: file:line:col, the line, a caret."""
    if src is None:
        return ScenarioError(message)
    return ScenarioError(RuleIssue(message, src.location(path)).render())


def invalid(src: SourceFile, exc: ValidationError, base: Path_ = ()) -> ScenarioError:
    """The first validation error, placed where it is in the file."""
    first = exc.errors(include_url=False)[0]
    loc = (*base, *first["loc"])
    path = data_path(src.data, loc)
    where = ".".join(str(p) for p in path) or "the file"
    if first["type"] == "extra_forbidden":
        return located(src, (*path, "__key__"), f"unknown key '{loc[-1]}' in "
                       f"{'.'.join(str(p) for p in path[:-1]) or 'the file'}")
    if first["type"] == "missing":
        return located(src, path, f"missing required key '{loc[-1]}' in {where}")
    message = str(first["msg"]).removeprefix("Value error, ")
    return located(src, path, f"{where}: {message}")


def seed_problem(src: SourceFile | None, base: Path_, customer: str,
                 exc: SeedError) -> ScenarioError:
    where = (*base, customer, *exc.path)
    return located(src, where, f"customer {customer}: {exc.reason}")


def customers_of(src: SourceFile, data: Any, base: Path_) -> dict[str, CustomerSeed]:
    """Validate a mapping of customer id -> starting state found at ``base`` in ``src``."""
    try:
        return CUSTOMERS.validate_python(data)
    except ValidationError as exc:
        raise invalid(src, exc, base) from None
