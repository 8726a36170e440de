"""A rule's campaign window (``active: {from, until, tz}``) as two instants."""

from __future__ import annotations

from datetime import date, datetime

from engine.dsl.calendar import bound, zone
from engine.dsl.timefns import MAX_TS, MIN_TS
from engine.pack import schema as S
from engine.pack.compile.issues import Issues
from engine.pack.model import Window
from engine.pack.source import Path_, SourceFile


def _written(value: object) -> str:
    """A window bound as the author wrote it (YAML made a date of an unquoted one)."""
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def compile_window(
    src: SourceFile, path: Path_, active: S.Active, issues: Issues
) -> Window | None:
    """The window, or None after an error."""
    try:
        tz = zone(active.tz)
    except ValueError as exc:
        issues.error(src, (*path, "tz"), str(exc))
        return None
    if active.from_ is None and active.until is None:
        issues.error(src, path, "a campaign window needs 'from', 'until' or both")
        return None
    ends: list[float] = []
    for key, value, end in (("from", active.from_, False), ("until", active.until, True)):
        if value is None:
            ends.append(MAX_TS if end else MIN_TS)
            continue
        try:
            ends.append(bound(value, tz, end=end))
        except ValueError as exc:
            issues.error(src, (*path, key), str(exc))
            return None
    start, end_ = ends
    if end_ <= start:
        issues.error(src, (*path, "until"),
                     f"'until' ({_written(active.until)}) is before 'from' "
                     f"({_written(active.from_)}): the campaign would never run")
        return None
    return Window(start, end_, active.tz)
