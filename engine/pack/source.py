"""Read YAML rule files with ruamel.yaml, keeping where every key and value stands.

Positions let every error point at file:line:column, including inside an expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, Event
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from engine.errors import RuleIssue, SourceLocation

Path_ = tuple[str | int, ...]

# Rule files are small (the example packs are a few KiB each); the caps bound what a hot
# reload reads into memory from a file someone dropped in the rules directory.
MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64  # rule files nest a few levels; this bounds the composer's recursion


@dataclass(frozen=True, slots=True)
class Mark:
    line: int  # 0-based, as ruamel gives them
    col: int
    style: str  # "plain", "quoted", "block", "key"


@dataclass
class SourceFile:
    path: str
    text: str
    data: Any
    marks: dict[Path_, Mark] = field(default_factory=dict)

    _lines: list[str] | None = field(default=None, repr=False)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:  # split once: error locations are looked up per item
            self._lines = self.text.splitlines()
        return self._lines

    def line_text(self, line: int) -> str:
        lines = self.lines
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def location(self, path: Path_, inner: tuple[int, int] | None = None) -> SourceLocation:
        """Where ``path`` is; ``inner`` is (1-based line, 0-based col) inside an expression."""
        cur = path
        while cur and cur not in self.marks:
            cur = cur[:-1]
        mark = self.marks.get(cur)
        if mark is None:
            return SourceLocation(self.path, 1, 1, self.line_text(1))
        line, col = mark.line + 1, mark.col + 1
        if inner is not None and cur == path:
            eline, ecol = inner
            if mark.style == "block":
                line = mark.line + 1 + eline
                text = self.line_text(line)
                col = len(text) - len(text.lstrip(" ")) + ecol + 1
            elif mark.style == "quoted":
                line, col = line + eline - 1, (col + 1 + ecol if eline == 1 else ecol + 1)
            else:
                line, col = line + eline - 1, (col + ecol if eline == 1 else ecol + 1)
        return SourceLocation(self.path, line, col, self.line_text(line))


def _style(value: Any) -> str:
    if isinstance(value, LiteralScalarString | FoldedScalarString):
        return "block"
    if isinstance(value, DoubleQuotedScalarString | SingleQuotedScalarString):
        return "quoted"
    return "plain"


def _plain(node: Any, path: Path_, marks: dict[Path_, Mark]) -> Any:
    """Turn ruamel's round-trip nodes into plain Python, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            sub = (*path, str(key))
            try:
                vline, vcol = node.lc.value(key)
                kline, kcol = node.lc.key(key)
            except (KeyError, TypeError, AttributeError):
                vline = vcol = kline = kcol = -1
            if vline >= 0:
                marks[sub] = Mark(vline, vcol, _style(value))
                marks[(*sub, "__key__")] = Mark(kline, kcol, "key")
            out[str(key)] = _plain(value, sub, marks)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            sub = (*path, i)
            try:
                line, col = node.lc.item(i)
                marks[sub] = Mark(line, col, _style(value))
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            items.append(_plain(value, sub, marks))
        return items
    if isinstance(node, str):
        return str(node)
    return node


def read_source(
    path: Path, display: str | None = None, max_bytes: int = MAX_FILE_BYTES, *,
    kind: str = "rule",
) -> tuple[SourceFile | None, RuleIssue | None]:
    """Load one YAML file of at most ``max_bytes``. On an error, return the issue with its
    position."""
    name = display or str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # never more, even if the file grows meanwhile
        if len(raw) > max_bytes:
            return None, _too_big(name, max_bytes, kind)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, RuleIssue(f"cannot read file: {exc}", SourceLocation(name, 1, 1))
    return parse_source(text, name, max_bytes, kind=kind)


def _too_big(name: str, max_bytes: int, kind: str = "rule") -> RuleIssue:
    return RuleIssue(
        f"{kind} file over the {max_bytes}-byte limit: split it or shorten it",
        SourceLocation(name, 1, 1),
        code="size",
    )


def _refused(event: Event, kind: str) -> str | None:
    """Why ``event`` may not appear in a ``kind`` file ("rule", "scenario"), or None."""
    if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
        return (
            f"YAML anchors and aliases (&name, *name, <<: *name) are not allowed in {kind} "
            "files: they can expand exponentially ('billion laughs'); repeat the value instead"
        )
    tag = getattr(event, "tag", None)
    if tag is not None:
        return (
            f"YAML tags are not allowed in {kind} files (found {str(tag)!r}): "
            "write a plain value"
        )
    return None


class _RefusedConstruct(MarkedYAMLError):
    """A tag, anchor or alias in a rule file (translated to a RuleIssue in parse_source)."""


class _RuleFileComposer(Composer):
    """ruamel's composer, refusing tags, anchors and aliases before their node is built.

    Every node, alias or not, goes through ``compose_node``; its event is only peeked here,
    so a refused file costs one pass over the text however far its aliases would expand.
    """

    kind = "rule"

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        reason = _refused(event, self.kind)
        if reason is not None:
            raise _RefusedConstruct(problem=reason, problem_mark=event.start_mark)
        return super().compose_node(parent, index)


class _ScenarioFileComposer(_RuleFileComposer):
    kind = "scenario"


_COMPOSERS: dict[str, type[_RuleFileComposer]] = {
    "rule": _RuleFileComposer,
    "scenario": _ScenarioFileComposer,
}


def parse_source(
    text: str, name: str, max_bytes: int = MAX_FILE_BYTES, *, kind: str = "rule"
) -> tuple[SourceFile | None, RuleIssue | None]:
    """Parse one rule file's text (or, with ``kind="scenario"``, a scenario or starting-state
    file's). Tags, anchors and aliases are refused before anything is constructed: a tag
    would otherwise load as an opaque object (read as "no value"), and aliases can make a
    few hundred bytes expand into gigabytes."""
    if len(text.encode("utf-8")) > max_bytes:
        return None, _too_big(name, max_bytes, kind)
    yaml = YAML(typ="rt")
    yaml.Composer = _COMPOSERS[kind]
    yaml.max_depth = MAX_DEPTH
    yaml.allow_duplicate_keys = False
    yaml.preserve_quotes = True  # so positions inside quoted expressions are exact
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line + 1) if mark else 1
        col = (mark.column + 1) if mark else 1
        lines = text.splitlines()
        src = lines[line - 1] if 0 < line <= len(lines) else ""
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, MaxDepthExceededError):
            problem = f"YAML nested more than {MAX_DEPTH} levels deep"
        elif not isinstance(exc, _RefusedConstruct):
            problem = f"YAML syntax error: {problem}"
        return None, RuleIssue(problem, SourceLocation(name, line, col, src), code="yaml")
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        return None, RuleIssue(f"YAML error: {exc}", SourceLocation(name, 1, 1), code="yaml")
    marks: dict[Path_, Mark] = {}
    data = _plain(raw, (), marks)
    if data is None:
        data = {}
    source = SourceFile(name, text, data, marks)
    if not isinstance(data, dict):
        what = "a rule file must be a mapping of sections (rules:, messages:, ...)"
        if kind != "rule":
            what = f"a {kind} file must be a mapping (key: value lines)"
        return None, RuleIssue(
            what,
            SourceLocation(name, 1, 1, source.line_text(1)),
        )
    return source, None
