"""Instance keys (``key:`` on a follow-up rule or a context): one expression, compiled once
per event type it is read on, so that a field one of them lacks is an error at load."""

from __future__ import annotations

from engine.dsl.compiler import CompiledExpr, compile_expr
from engine.errors import ExpressionError
from engine.pack.compile.issues import Issues
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.source import Path_, SourceFile

# what an instance key may be: text or a whole number (see engine.models.state.instance_key)
_KEY_TYPES = frozenset({"str", "int", "number", "any", "null"})
# a map's remove: may give a list of keys too, as a set's gives a list of members
_KEYS_TYPES = _KEY_TYPES | {"list"}


def compile_key(
    src: SourceFile,
    path: Path_,
    text: str,
    event_type: str,
    role: str,
    scopes: Scopes,
    issues: Issues,
    rule_id: str | None = None,
    *,
    many: bool = False,
) -> CompiledExpr | None:
    """The key read on one event type (``role`` says why it is read there, for errors);
    ``many``: a list of keys is accepted too."""
    try:
        compiled = compile_expr(text, scopes.for_triggers((event_type,)))
    except ExpressionError as exc:
        issues.error(
            src, path, f"the key is read on {role} '{event_type}' too: {exc.message}",
            rule_id, inner=(exc.line, exc.column), code="expression",
        )
        return None
    if compiled.type not in (_KEYS_TYPES if many else _KEY_TYPES):
        what = "text or a whole number" + (", or a list of them" if many else "")
        issues.error(
            src, path, f"a key must be {what}, but on {role} '{event_type}' "
            f"it is a {compiled.type}", rule_id,
        )
        return None
    return compiled


def key_on_triggers(
    src: SourceFile,
    path: Path_,
    text: str,
    triggers: tuple[str, ...],
    scopes: Scopes,
    values: Values,
    issues: Issues,
    *,
    many: bool = False,
) -> CompiledExpr | None:
    """A key read on an update's triggers: checked on each, compiled once on all of them
    (joined field types: the key the update uses). None after an error. ``many``: a list
    of keys is accepted too."""
    ok = all([compile_key(src, path, text, t, "the trigger", scopes, issues, many=many)
              for t in triggers])
    return values.expr(src, path, text, scopes.for_triggers(triggers)) if ok else None
