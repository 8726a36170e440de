"""The values every section holds: durations, expressions and parameters, compiled against
the pack's constants; what each reads of the sent history is noted for retention."""

from __future__ import annotations

from typing import Any

from engine.dsl.compiler import CompiledExpr, compile_expr
from engine.dsl.durations import format_duration
from engine.dsl.types import Scope
from engine.errors import ExpressionError
from engine.pack.compile.issues import Issues
from engine.pack.constants import PackConstant, duration_value
from engine.pack.model import Param
from engine.pack.retention import Need, lookbacks
from engine.pack.source import Path_, SourceFile


class Values:
    """Compiles values for every section; ``needs`` collects how far back the pack reads
    sent history (lookbacks here; cooldowns and cap windows from their sections)."""

    def __init__(self, issues: Issues, constants: dict[str, PackConstant]) -> None:
        self.issues = issues
        self.constants = constants
        self.needs: list[Need] = []

    def duration(self, src: SourceFile, path: Path_, value: Any) -> float | None:
        if value is None:
            return None
        try:
            return duration_value(value, self.constants)
        except ValueError as exc:
            self.issues.error(src, path, str(exc))
            return None

    def expr(
        self, src: SourceFile, path: Path_, text: str, scope: Scope, boolean: bool = False
    ) -> CompiledExpr | None:
        try:
            compiled = compile_expr(text, scope, boolean=boolean)
        except ExpressionError as exc:
            self.issues.error(
                src, path, exc.message, inner=(exc.line, exc.column), code="expression"
            )
            return None
        values = {k: c.value for k, c in self.constants.items()}
        for look in lookbacks(compiled.tree, values):
            self.needs.append(Need(
                look.seconds,
                f"{look.function}(...) looks back {format_duration(look.seconds)}",
                src.location(path, (look.line, look.column)),
            ))
        return compiled

    def param(self, src: SourceFile, path: Path_, value: Any, scope: Scope) -> Param | None:
        if isinstance(value, str):
            return self.expr(src, path, value, scope)
        if isinstance(value, bool | int | float):
            return value  # a YAML number or boolean is its own constant
        self.issues.error(
            src, path, f"expected an expression, a number or a boolean, got {value!r}"
        )
        return None
