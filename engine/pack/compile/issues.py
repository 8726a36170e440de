"""The problems found while compiling a pack, each pointing at file:line:col."""

from __future__ import annotations

from engine.errors import RuleIssue
from engine.pack.locate import owner
from engine.pack.source import Path_, SourceFile


class Issues:
    """Collects every issue of one load, in the order found; errors reject the pack."""

    def __init__(self, found: list[RuleIssue]) -> None:
        self.found = found

    def error(
        self,
        src: SourceFile,
        path: Path_,
        msg: str,
        rule_id: str | None = None,
        inner: tuple[int, int] | None = None,
        severity: str = "error",
        code: str = "invalid",
    ) -> None:
        """An issue at ``path`` in ``src`` (``inner``: 1-based line, 0-based column inside
        an expression); it belongs to ``rule_id``, or to the item the path is in."""
        self.found.append(
            RuleIssue(
                msg, src.location(path, inner), rule_id or owner(src.data, path), severity, code
            )
        )

    def has_errors(self) -> bool:
        return any(i.severity == "error" for i in self.found)
