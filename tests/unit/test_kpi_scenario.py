"""A week of NPS answers on the shipped example pack (rules/): the rules react to the
answers as before, the answers are counted per day, and the week's NPS is the textbook
one; a redelivered answer is not counted twice, and an impossible one not at all."""

from __future__ import annotations

from pathlib import Path

from engine.outcomes.aggregate import kpi_totals
from engine.outcomes.kpis import summaries
from engine.pack.loader import load_pack
from engine.testing import Harness

RULES = Path(__file__).parents[2] / "rules"
# (customer, day of the week, answer)
ANSWERS = [("olga", 0, 4), ("piet", 0, 10), ("ines", 1, 9), ("marc", 2, 7), ("lena", 3, 6),
           ("tomas", 5, 10), ("ada", 6, 8)]


def test_a_week_of_nps_answers() -> None:
    h = Harness(load_pack(RULES), start="2026-02-02T09:00:00+00:00")
    try:
        for c, _, _ in ANSWERS:
            h.customer(c, attributes={"tz": "Europe/Rome"}, consent={"push": True,
                                                                        "email": True})
        totals: dict[str, float] = {}
        days: set[str] = set()
        sent: dict[str, list[str]] = {}
        at_day = 0
        for c, day, score in ANSWERS:
            if day > at_day:
                h.clock.advance(f"{day - at_day}d")
                at_day = day
            made = h.emit(c, "nps_submitted", {"score": score}, id=f"{c}-nps")
            sent[c] = [d.message for d in made if d.outcome == "sent"]
            assert h.last is not None
            for d, fields in kpi_totals(h.last).items():
                days.add(d)
                for k, v in fields.items():
                    totals[k] = totals.get(k, 0.0) + v
            h.emit(c, "nps_submitted", {"score": score}, id=f"{c}-nps")  # redelivered
            assert h.last is not None and h.last.kpis == {}
        h.emit("olga", "nps_submitted", {"score": 12})  # outside 0-10: a fault
        assert h.last is not None and h.last.kpis == {}
        assert [f.rule for f in h.last.faults] == ["kpi:nps"]
    finally:
        h.close()

    assert sent["olga"] == ["care_outreach"] and sent["piet"] == ["referral_invite"]
    assert len(days) == 6  # counted on each answer's own day
    scores = [s for _, _, s in ANSWERS]
    promoters = len([s for s in scores if s >= 9])
    detractors = len([s for s in scores if s <= 6])
    (nps,) = summaries(totals)
    assert nps.responses == 7
    assert nps.value == 100 * (promoters - detractors) / 7  # (3 - 2) / 7
    assert nps.bands == {"promoter": 3.0, "passive": 2.0, "detractor": 2.0}
