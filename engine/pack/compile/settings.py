"""What holds across a whole pack: its constants, its settings, and the history retention
it needs (raised to the longest cooldown, cap window or lookback)."""

from __future__ import annotations

from engine.pack import schema as S
from engine.pack.compile.declarations import Declared
from engine.pack.compile.issues import Issues
from engine.pack.compile.values import Values
from engine.pack.constants import PackConstant, compile_constant
from engine.pack.model import PackSettings
from engine.pack.retention import longest, too_short
from engine.pack.source import SourceFile

RetentionSetting = tuple[SourceFile, float]  # an explicit history_retention, where it is


def compile_constants(declared: Declared, issues: Issues) -> dict[str, PackConstant]:
    out: dict[str, PackConstant] = {}
    for name, (src, raw) in declared.items():
        try:
            out[name] = compile_constant(name, raw)
        except ValueError as exc:
            issues.error(src, ("constants", name), f"constant '{name}': {exc}")
    return out


def compile_settings(
    given: list[tuple[SourceFile, S.Settings]], values: Values
) -> tuple[PackSettings, RetentionSetting | None]:
    """The pack's settings (each given ``settings:`` over the defaults, in file order) and
    its explicit history retention, if any."""
    settings = PackSettings()
    retention: RetentionSetting | None = None
    for src, s in given:
        d = values.duration(src, ("settings", "dedupe_window"), s.dedupe_window)
        h = values.duration(src, ("settings", "history_retention"), s.history_retention)
        if h is not None and "history_retention" in s.model_fields_set:
            retention = (src, h)
        settings = PackSettings(
            timezone_attribute=s.timezone_attribute,
            dedupe_window=d if d is not None else settings.dedupe_window,
            max_per_event_per_channel=s.max_per_event_per_channel,
            history_retention=h if h is not None else settings.history_retention,
        )
    return settings, retention


def apply_retention(
    settings: PackSettings, values: Values, setting: RetentionSetting | None, issues: Issues
) -> None:
    """Raise history retention to what the pack needs; a shorter setting is an error."""
    need = longest(values.needs)
    if need is None or need.seconds <= settings.history_retention:
        return
    if setting is not None:
        src, seconds = setting
        issues.error(src, ("settings", "history_retention"), too_short(seconds, need))
    settings.history_retention = need.seconds
