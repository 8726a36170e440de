"""Mapping validation errors back to the YAML: paths, owners, salvage of good items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def pydantic_message(err: Any, path: Path_) -> str:
    loc = [str(p) for p in err["loc"]]
    field = ".".join(str(p) for p in path) or "<file>"
    if err["type"] == "extra_forbidden":
        where = ".".join(str(p) for p in path[:-2]) or "the file"
        return f"unknown key '{loc[-1]}' in {where}"
    if err["type"] == "missing":
        return f"missing required key '{loc[-1]}' in {field}"
    return f"{field}: {err['msg']}"


def owner(data: Any, path: Path_) -> str | None:
    """The id of the rule (or the name of the item) a path belongs to."""
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
