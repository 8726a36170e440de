"""The named sections of every file merged into one pack, duplicates rejected with both
places named: constants, events, attributes, contexts, messages, policies, sets, maps; rule ids, the
pack's name and its settings (given at most once)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.errors import SourceLocation
from engine.pack import schema as S
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.source import SourceFile

UNIQUE_SECTIONS = (
    "constants", "events", "attributes", "contexts", "messages", "policies", "sets", "maps",
)

Declared = dict[str, tuple[SourceFile, Any]]  # name -> (the file declaring it, its value)


@dataclass(slots=True)
class Declarations:
    sections: dict[str, Declared] = field(
        default_factory=lambda: {s: {} for s in UNIQUE_SECTIONS}
    )
    name: str = "rules"
    settings: list[tuple[SourceFile, S.Settings]] = field(default_factory=list)

    @property
    def constants(self) -> Declared:
        return self.sections["constants"]

    @property
    def events(self) -> Declared:
        return self.sections["events"]

    @property
    def attributes(self) -> Declared:
        return self.sections["attributes"]

    @property
    def contexts(self) -> Declared:
        return self.sections["contexts"]

    @property
    def messages(self) -> Declared:
        return self.sections["messages"]

    @property
    def policies(self) -> Declared:
        return self.sections["policies"]

    @property
    def sets(self) -> Declared:
        return self.sections["sets"]

    @property
    def maps(self) -> Declared:
        return self.sections["maps"]


def declare(files: list[RuleFileParts], issues: Issues) -> Declarations:
    """Merge the files' sections (a later duplicate wins, after its error)."""
    out = Declarations()
    seen_rules: dict[str, SourceLocation] = {}
    seen_settings: SourceLocation | None = None
    for part in files:
        src, f = part.src, part.parts
        for section in UNIQUE_SECTIONS:
            for key, value in getattr(f, section).items():
                prev = out.sections[section].get(key)
                if prev is not None:
                    where = prev[0].location((section, key))
                    issues.error(
                        src,
                        (section, key, "__key__"),
                        f"{section[:-1]} '{key}' is defined twice (first at {where})",
                    )
                out.sections[section][key] = (src, value)
        for i, r in part.items("rules"):
            if r.id in seen_rules:
                issues.error(
                    src,
                    ("rules", i, "id"),
                    f"rule id '{r.id}' is used twice (first at {seen_rules[r.id]})",
                )
            seen_rules[r.id] = src.location(("rules", i, "id"))
        if f.pack:
            out.name = f.pack
        if f.settings is not None:
            if seen_settings is not None:
                issues.error(
                    src, ("settings",), f"settings given twice (first at {seen_settings})"
                )
            seen_settings = src.location(("settings",))
            out.settings.append((src, f.settings))
    return out
