"""Compiling what holds across a whole pack: constants, settings, consent requirements and
the history retention the pack needs. Mixed into the loader's builder."""

from __future__ import annotations

from typing import Any

from engine.dsl.compiler import CompiledExpr
from engine.dsl.durations import format_duration
from engine.errors import SourceLocation
from engine.pack import schema as S
from engine.pack.consent import ConsentRules
from engine.pack.constants import PackConstant, compile_constant, duration_value
from engine.pack.model import PackSettings
from engine.pack.retention import Need, longest, lookbacks, too_short
from engine.pack.sections import SectionCompiler
from engine.pack.source import Path_, SourceFile


class PackWideCompiler(SectionCompiler):
    constants: dict[str, PackConstant]
    settings: PackSettings
    consent: ConsentRules
    needs: list[Need]
    retention_setting: tuple[SourceFile, float] | None

    def duration(self, src: SourceFile, path: Path_, value: Any) -> float | None:
        if value is None:
            return None
        try:
            return duration_value(value, self.constants)
        except ValueError as exc:
            self.error(src, path, str(exc))
            return None

    def expr(
        self, src: SourceFile, path: Path_, text: str, scope: Any, boolean: bool = False
    ) -> CompiledExpr | None:
        compiled = self.compile_checked(src, path, text, scope, boolean)
        if compiled is not None:
            values = {k: c.value for k, c in self.constants.items()}
            for look in lookbacks(compiled.tree, values):
                self.needs.append(Need(
                    look.seconds,
                    f"{look.function}(...) looks back {format_duration(look.seconds)}",
                    src.location(path, (look.line, look.column)),
                ))
        return compiled

    def compile_checked(
        self, src: SourceFile, path: Path_, text: str, scope: Any, boolean: bool
    ) -> CompiledExpr | None:
        raise NotImplementedError

    def _constants(self) -> None:
        self.constants = {}
        for name, (src, raw) in self.decl["constants"].items():
            try:
                self.constants[name] = compile_constant(name, raw)
            except ValueError as exc:
                self.error(src, ("constants", name), f"constant '{name}': {exc}")

    def _settings(self, src: SourceFile, s: S.Settings) -> None:
        d = self.duration(src, ("settings", "dedupe_window"), s.dedupe_window)
        h = self.duration(src, ("settings", "history_retention"), s.history_retention)
        if h is not None and "history_retention" in s.model_fields_set:
            self.retention_setting = (src, h)
        self.settings = PackSettings(
            timezone_attribute=s.timezone_attribute,
            dedupe_window=d if d is not None else self.settings.dedupe_window,
            max_per_event_per_channel=s.max_per_event_per_channel,
            history_retention=h if h is not None else self.settings.history_retention,
        )

    def _consent(self) -> None:
        self.consent = ConsentRules()
        for src, f in self.files:
            if f.consent is not None:
                self.consent.add(src, f.consent, self.channels, self.categories, self.error)

    def _retention(self) -> None:
        """Raise history retention to what the pack needs; a shorter setting is an error."""
        need = longest(self.needs)
        if need is None or need.seconds <= self.settings.history_retention:
            return
        if self.retention_setting is not None:
            src, setting = self.retention_setting
            self.error(src, ("settings", "history_retention"), too_short(setting, need))
        self.settings.history_retention = need.seconds

    def cooldown_need(self, mid: str, seconds: float, where: SourceLocation) -> None:
        self.needs.append(
            Need(seconds, f"message '{mid}' has a {format_duration(seconds)} cooldown", where)
        )

    def window_need(self, cap: str, seconds: float, where: SourceLocation) -> None:
        self.needs.append(
            Need(seconds, f"frequency cap '{cap}' counts over {format_duration(seconds)}", where)
        )
