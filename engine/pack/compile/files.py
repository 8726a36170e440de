"""Each rule file validated against the schema, keeping its well-formed items after an error."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.pack import schema as S
from engine.pack.compile.issues import Issues
from engine.pack.locate import data_path, pydantic_message, significant, without
from engine.pack.source import Path_, SourceFile


@dataclass(slots=True)
class RuleFileParts:
    """One rule file, validated; ``kept`` maps a list section salvaged after a schema error
    to the source index of each item kept, so positions still point at the right line."""

    src: SourceFile
    parts: S.RuleFile
    kept: dict[str, list[int]] = field(default_factory=dict)

    def items(self, section: str) -> list[tuple[int, Any]]:
        """A list section's items with their index in the source file."""
        values = getattr(self.parts, section)
        kept = self.kept.get(section)
        return [(kept[i] if kept else i, v) for i, v in enumerate(values)]


def validate_files(sources: list[SourceFile], issues: Issues) -> list[RuleFileParts]:
    """The files that validate, whole or salvaged; schema errors go to ``issues``."""
    out: list[RuleFileParts] = []
    for src in sources:
        try:
            out.append(RuleFileParts(src, S.RuleFile.model_validate(src.data)))
        except ValidationError as exc:
            bad: set[Path_] = set()
            for err in significant(exc.errors(include_url=False), src.data):
                path = data_path(src.data, err["loc"])
                bad.add(path[:2])
                if err["type"] == "extra_forbidden":
                    path = (*path, "__key__")
                issues.error(src, path, pydantic_message(err, path, S.RuleFile), code="schema")
            # Keep checking the items that are well-formed, so one bad rule does not
            # hide the errors of the others (the pack is rejected either way).
            salvaged, kept = without(src.data, bad)
            # If even the rest fails, the file's errors above are what there is to say.
            with contextlib.suppress(ValidationError):
                out.append(RuleFileParts(src, S.RuleFile.model_validate(salvaged), kept))
    return out
