"""Tact's exceptions: one root, a docstring on each leaf, named fields for locations.

Third-party errors (ruamel, pydantic, redis, kafka) are translated into these at the edges,
so callers only ever catch :class:`TactError` and its children.
"""

from __future__ import annotations

from dataclasses import dataclass


class TactError(Exception):
    """Root of every error Tact raises on purpose."""


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where something sits in a rule file: 1-based line and column."""

    file: str
    line: int
    column: int
    source_line: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem found in a rule pack, with where it is and which rule it belongs to."""

    message: str
    location: SourceLocation | None = None
    rule_id: str | None = None
    severity: str = "error"  # "error" rejects the pack; "warning" is a static finding only
    code: str = "invalid"

    def render(self) -> str:
        where = str(self.location) if self.location else "<pack>"
        who = f" [{self.rule_id}]" if self.rule_id else ""
        head = f"{where}: {self.severity}{who}: {self.message}"
        loc = self.location
        if loc is None or not loc.source_line:
            return head
        caret = " " * max(loc.column - 1, 0) + "^"
        return f"{head}\n    {loc.source_line}\n    {caret}"


class RulePackError(TactError):
    """A rule pack was rejected: it holds at least one error. The pack is rejected whole."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        first = errors[0].render() if errors else "rule pack rejected"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)


class ExpressionError(TactError):
    """An expression could not be compiled: bad syntax, a node, name or function not allowed.

    ``offset`` is the 0-based (line, column) inside the expression text, so that the caller
    can map it back to the YAML file.
    """

    def __init__(self, message: str, line: int = 1, column: int = 0) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)


class EventValidationError(TactError):
    """An event did not match the wire format. ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ScenarioError(TactError):
    """A scenario file is malformed (not a failed expectation: a file that cannot be run)."""


class StateStoreError(TactError):
    """The state store could not load or save customer state; the batch must be retried."""


class StateConflictError(StateStoreError):
    """Another writer changed a customer's state since it was loaded (optimistic concurrency)."""


class StateDecodeError(TactError, ValueError):
    """A stored customer state or outbox entry does not decode: truncated, not msgpack, of
    a wire version this code cannot read, or with a field of the wrong type.

    Retrying cannot help: the reader quarantines the value instead. ``reason`` is short and
    safe to log (field names and type names, never stored values). A ``ValueError`` too, as
    the decoders raised before.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StateCorruptError(StateStoreError):
    """``load`` met customers whose stored state does not decode (they are quarantined).

    ``quarantined`` maps each to its reason. The worker reads with ``read_batch`` instead,
    which returns them apart from the states; this error is for callers that want every
    state or nothing.
    """

    def __init__(self, quarantined: dict[str, str]) -> None:
        self.quarantined = dict(quarantined)
        named = "; ".join(f"{c}: {r}" for c, r in list(self.quarantined.items())[:10])
        super().__init__(f"unreadable stored state, quarantined: {named}")


class WorkerNotReadyError(TactError):
    """The worker was asked for something (ingest, say) before it started or after it
    stopped."""


class CampaignError(TactError):
    """A campaign run cannot start: the pack has no such campaign, it is disabled, no run
    is scheduled by the given time, or the run's checkpoint cannot be read or saved."""
