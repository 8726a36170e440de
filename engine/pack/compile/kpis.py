"""Experience KPIs (``kpis:``): which event carries each one's answer, type-checked at load."""

from __future__ import annotations

from engine.dsl.types import NUMERIC
from engine.errors import SourceLocation
from engine.outcomes.kpis import DEFAULT_SCALE, KPIS, LOWEST
from engine.pack.compile.catalog import Catalog
from engine.pack.compile.files import RuleFileParts
from engine.pack.compile.issues import Issues
from engine.pack.compile.scope import Scopes
from engine.pack.compile.values import Values
from engine.pack.model import KpiDef

_SCORE_TYPES = NUMERIC | {"any"}  # "any": checked per answer at run time


def compile_kpis(files: list[RuleFileParts], catalog: Catalog, scopes: Scopes, values: Values,
                 issues: Issues) -> dict[str, tuple[KpiDef, ...]]:
    """Event type -> the KPIs it carries. Each KPI is declared once in the pack; its event
    must be declared (when the pack declares events) and its score a number on it."""
    seen: dict[str, SourceLocation] = {}
    by_event: dict[str, list[KpiDef]] = {}
    for part in files:
        declared, src = part.parts.kpis, part.src
        if declared is None:
            continue
        for name in KPIS:
            kpi = getattr(declared, name)
            if kpi is None:
                continue
            path = ("kpis", name)
            if name in seen:
                issues.error(src, (*path, "__key__"),
                             f"kpi '{name}' is declared twice (first at {seen[name]})")
                continue
            seen[name] = src.location(path)
            catalog.known_event(issues, src, (*path, "event"), kpi.event, f"kpis.{name}")
            score = values.expr(src, (*path, "score"), kpi.score,
                                scopes.for_triggers((kpi.event,)))
            if score is None:
                continue
            if score.type not in _SCORE_TYPES:
                issues.error(src, (*path, "score"), f"a {name} score is a whole number; "
                             f"'{kpi.score}' is a {score.type}")
                continue
            high = getattr(kpi, "scale", None) or DEFAULT_SCALE[name]
            by_event.setdefault(kpi.event, []).append(
                KpiDef(name, kpi.event, score, LOWEST[name], high))
    return {etype: tuple(kpis) for etype, kpis in by_event.items()}
