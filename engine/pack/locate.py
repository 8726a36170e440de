"""Mapping validation errors back to the YAML: paths, owners, salvage of good items."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from engine.dsl.syntax import suggest
from engine.pack.source import Path_


def without(data: dict[str, Any], bad: set[Path_]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """A copy of a file's data without the items that failed validation.

    For list sections it also returns, per section, the original index of each kept item,
    so positions in error messages still point at the right place in the file.
    """
    out = dict(data)
    kept: dict[str, list[int]] = {}
    drop: dict[str, set[Any]] = {}
    for path in bad:
        if len(path) == 1:
            out.pop(str(path[0]), None)
        elif len(path) == 2:
            drop.setdefault(str(path[0]), set()).add(path[1])
    for section, keys in drop.items():
        value = out.get(section)
        if isinstance(value, dict):
            out[section] = {k: v for k, v in value.items() if k not in keys}
        elif isinstance(value, list):
            kept[section] = [i for i in range(len(value)) if i not in keys]
            out[section] = [value[i] for i in kept[section]]
    return out, kept


def as_tuple(v: str | list[str]) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else tuple(v)


def data_path(data: Any, loc: Sequence[int | str]) -> Path_:
    """Keep the parts of a pydantic error location that exist in the data."""
    path: list[str | int] = []
    cur: Any = data
    for part in loc:
        in_map = isinstance(cur, dict) and isinstance(part, str) and part in cur
        in_list = isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur)
        if in_map or in_list:
            cur = cur[part]
            path.append(part)
    return tuple(path)


def significant(errors: Sequence[Any], data: Any) -> list[Any]:
    """The errors worth showing: where a value may take several forms (``send: id`` or
    ``send: {message: ...}``), drop "should be a string" when the author plainly wrote the
    other form and it has its own, more precise errors."""
    paths = [data_path(data, e["loc"]) for e in errors]

    def wrong_form(i: int) -> bool:
        if not str(errors[i]["type"]).endswith("_type"):
            return False
        here = paths[i]
        return any(
            j != i and paths[j][: len(here)] == here and not str(e["type"]).endswith("_type")
            for j, e in enumerate(errors)
        )

    return [e for i, e in enumerate(errors) if not wrong_form(i)]


def pydantic_message(err: Any, path: Path_, model: type[BaseModel] | None = None) -> str:
    loc = [str(p) for p in err["loc"]]
    field = ".".join(str(p) for p in path) or "<file>"
    if err["type"] == "extra_forbidden":
        where = ".".join(str(p) for p in path[:-2]) or "the file"
        hint = suggest(loc[-1], allowed_keys(model, err["loc"][:-1])) if model else ""
        if len(loc) == 1:
            return f"unknown section '{loc[0]}'{hint}"
        return f"unknown key '{loc[-1]}' in {where}{hint}"
    if err["type"] == "missing":
        return f"missing required key '{loc[-1]}' in {field}"
    return f"{field}: {err['msg']}"


def owner(data: Any, path: Path_) -> str | None:
    """The id of the rule (or the name of the item) a path belongs to."""
    if path and path[-1] == "__key__":
        path = path[:-1]
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        try:
            rid = data["rules"][path[1]].get("id")
            return str(rid) if rid else f"rules[{path[1]}]"
        except (KeyError, IndexError, AttributeError, TypeError):
            return None
    if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], str):
        return f"{path[0]}.{path[1]}"
    if len(path) >= 2 and isinstance(path[1], int):
        return f"{path[0]}[{path[1]}]"
    return None


def allowed_keys(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the schema allows in the mapping at ``loc`` (a pydantic error location,
    which names the member of a union it tried, e.g. ``('rules', 0, 'send', 'Send')``)."""
    current: list[Any] = [model]
    for part in loc:
        options = [t for c in current for t in _members(c)]
        named = [t for t in options if isinstance(t, type) and t.__name__ == part]
        if named:
            current = named
            continue
        nxt: list[Any] = []
        for t in options:
            if isinstance(t, type) and issubclass(t, BaseModel):
                info = t.model_fields.get(str(part))
                if info is not None:
                    nxt.append(info.annotation)
            elif typing.get_origin(t) is dict and isinstance(part, str):
                nxt.append(typing.get_args(t)[1])
            elif typing.get_origin(t) is list and isinstance(part, int):
                nxt.append(typing.get_args(t)[0])
        current = nxt
    keys: set[str] = set()
    for c in current:
        for t in _members(c):
            if isinstance(t, type) and issubclass(t, BaseModel):
                keys.update(t.model_fields)
    return sorted(keys)


def _members(tp: Any) -> list[Any]:
    """The types a (possibly Annotated, optional or union) annotation may hold."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _members(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for a in typing.get_args(tp) for m in _members(a)]
    return [tp]
