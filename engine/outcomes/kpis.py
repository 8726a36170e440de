"""Experience KPIs (NPS, CSAT, CES): the bands an answer falls in, and each KPI from counts.

Pure: no I/O. An answer is a whole number; the worker counts, per KPI and UTC day, the
answers in each band and the sum of the scores (``engine/pipeline/kpis``), so a period's
KPI is computed from sums alone, whatever the number of workers and days:

- **NPS** (answers 0-10): % promoters (9-10) minus % detractors (0-6); passives are 7-8.
  From -100 to 100.
- **CSAT** (answers 1 to ``scale``, 5 by default): % of answers in the top two (4 or 5 of
  5, the standard "satisfied" share), from 0 to 100.
- **CES** (answers 1 to ``scale``, 7 by default): the mean answer.

Each band is decided when the answer is counted, with the scale the pack had then, so
the report needs no pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NPS, CSAT, CES = "nps", "csat", "ces"
KPIS = (NPS, CSAT, CES)
#: the KPI's answers run from this to its scale (NPS: 0-10, fixed)
LOWEST = {NPS: 0, CSAT: 1, CES: 1}
DEFAULT_SCALE = {NPS: 10, CSAT: 5, CES: 7}
#: each KPI's bands, in the order shown; every answer falls in exactly one
BANDS = {NPS: ("promoter", "passive", "detractor"), CSAT: ("satisfied", "unsatisfied"),
         CES: ("all",)}
SUM = "sum"  # the stat holding the sum of the scores


def band(kpi: str, score: int, scale: int) -> str:
    """The band of one answer (``score`` already checked to be in range)."""
    if kpi == NPS:
        return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    if kpi == CSAT:
        return "satisfied" if score >= scale - 1 else "unsatisfied"
    return "all"


@dataclass(frozen=True, slots=True)
class KpiSummary:
    kpi: str
    responses: float
    value: float | None  # NPS and CSAT in points (%), CES the mean; None with no answers
    mean: float | None
    bands: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        return {"kpi": self.kpi, "responses": self.responses, "value": self.value,
                "mean": self.mean, **self.bands}


def summarize(kpi: str, stats: Mapping[str, float]) -> KpiSummary:
    """One KPI from its counts (``stats``: band -> answers, ``sum`` -> sum of scores)."""
    bands = {b: float(stats.get(b, 0.0)) for b in BANDS[kpi]}
    n = sum(bands.values())
    if n <= 0:
        return KpiSummary(kpi, 0.0, None, None, bands)
    mean = float(stats.get(SUM, 0.0)) / n
    if kpi == NPS:
        value = 100.0 * (bands["promoter"] - bands["detractor"]) / n
    elif kpi == CSAT:
        value = 100.0 * bands["satisfied"] / n
    else:
        value = mean
    return KpiSummary(kpi, n, value, mean, bands)


def summaries(totals: Mapping[str, float]) -> list[KpiSummary]:
    """Every KPI with answers in ``totals`` ("kpi|stat" -> amount), in KPIS order."""
    per: dict[str, dict[str, float]] = {}
    for name, amount in totals.items():
        kpi, _, stat = name.partition("|")
        if kpi in BANDS and stat:
            per.setdefault(kpi, {})[stat] = per.get(kpi, {}).get(stat, 0.0) + amount
    return [summarize(k, per[k]) for k in KPIS if k in per]
