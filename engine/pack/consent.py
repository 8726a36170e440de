"""Which sends need the customer's consent on the channel, worked out once at load.

By default every send does (``no_consent`` otherwise). A pack can say that some need none:
an internal escalation webhook, or service messages::

    consent:
      channels: {webhook: none}
      categories: {service: required}
    messages:
      escalation: {category: internal, channels: [webhook], consent: none}

A message's own ``consent:`` decides. Otherwise its channel's and category's settings are
combined and ``required`` wins a conflict (fail closed); nothing said means ``required``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from engine.pack import schema as S
from engine.pack.source import Path_, SourceFile

Report = Callable[[SourceFile, Path_, str], None]
_SINGULAR = {"channels": "channel", "categories": "category"}


class ConsentRules:
    """The pack-level ``consent:`` settings, merged across files."""

    def __init__(self) -> None:
        self.channels: dict[str, S.ConsentNeed] = {}
        self.categories: dict[str, S.ConsentNeed] = {}
        self._where: dict[tuple[str, str], SourceFile] = {}

    def add(
        self,
        src: SourceFile,
        section: S.ConsentSection,
        channels: frozenset[str],
        categories: frozenset[str],
        error: Report,
    ) -> None:
        """Merge one file's section, reporting unknown names and settings given twice."""
        for field, known, target in (
            ("channels", channels, self.channels),
            ("categories", categories, self.categories),
        ):
            given: dict[str, S.ConsentNeed] = getattr(section, field)
            for name, need in given.items():
                path: Path_ = ("consent", field, name, "__key__")
                if known and name not in known:
                    error(src, path, _unknown(field, name, known))
                    continue
                first = self._where.get((field, name))
                if first is not None:
                    where = first.location(("consent", field, name))
                    error(src, path, f"consent for {_SINGULAR[field]} '{name}' is given twice "
                          f"(first at {where})")
                self._where[(field, name)] = src
                target[name] = need

    def exempt_channels(
        self, category: str, channels: tuple[str, ...], own: S.ConsentNeed | None
    ) -> frozenset[str]:
        """The channels on which a message of this category needs no consent."""
        if own is not None:
            return frozenset(channels) if own == "none" else frozenset()
        out = set()
        for ch in channels:
            needs = (self.channels.get(ch), self.categories.get(category))
            if "none" in needs and "required" not in needs:
                out.add(ch)
        return frozenset(out)


def _unknown(field: str, name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f" (declare it under {field}:)"
    return f"unknown {_SINGULAR[field]} '{name}'{hint}"
