"""Experience KPIs in the core: each answer on a KPI's event counted in its band.

The facts are returned in ``BatchResult.kpis``: (epoch day of the event, kpi, stat) ->
amount, where stat is a band of :data:`engine.outcomes.kpis.BANDS` (one answer) or ``sum``
(its score). An answer that is missing, not a whole number or out of the KPI's range is
not counted: it is a fault ``kpi:<name>``, so a broken survey feed shows rather than
skewing the score.
"""

from __future__ import annotations

from typing import Any

from engine.outcomes.kpis import SUM, band
from engine.pack.model import KpiDef
from engine.pipeline.guards import RuleFault, describe
from engine.pipeline.state_ops import Env

KpiKey = tuple[int, str, str]  # (epoch day, kpi, band or "sum")
KpiFacts = dict[KpiKey, float]

DAY = 86400.0


class BadScore(ValueError):
    """An answer that cannot be counted (its reason is the message)."""


def whole_score(value: Any, low: int, high: int) -> int:
    """``value`` as an answer from ``low`` to ``high``; raises :class:`BadScore`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadScore(f"the score is {type(value).__name__} {value!r}, not a number")
    if value != value or value != int(value):  # NaN, or a fraction
        raise BadScore(f"the score {value!r} is not a whole number")
    if not low <= value <= high:
        raise BadScore(f"the score {value!r} is outside {low} to {high}")
    return int(value)


def record_kpis(kpis: tuple[KpiDef, ...], env: Env, event_id: str, facts: KpiFacts,
                faults: list[RuleFault]) -> list[str]:
    """Count this event's answer to each KPI it carries; returns explain lines."""
    day = int(env.now // DAY)
    lines = []
    for kpi in kpis:
        try:
            score = whole_score(env.eval(kpi.score), kpi.low, kpi.high)
        except Exception as exc:  # bad data: not counted, and counted as a fault
            faults.append(RuleFault(f"kpi:{kpi.name}", event_id, describe(exc)))
            lines.append(f"kpi {kpi.name}: not counted ({describe(exc)})")
            continue
        name = band(kpi.name, score, kpi.high)
        key = (day, kpi.name, name)
        facts[key] = facts.get(key, 0.0) + 1.0
        key = (day, kpi.name, SUM)
        facts[key] = facts.get(key, 0.0) + score
        lines.append(f"kpi {kpi.name}: score {score} ({name})")
    return lines
