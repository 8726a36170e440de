"""From a batch's outcome facts to the report's rows (engine/outcomes/aggregate)."""

from __future__ import annotations

import json

import pytest

from engine.cli.report import table, to_csv
from engine.outcomes.aggregate import batch_totals, columns, report_rows
from engine.pipeline.goals import DAY
from engine.testing import Harness
from tests.unit.test_outcomes import CONSENT, HELD, PACK, TREATED


def test_a_batch_gives_its_sent_decisions_and_facts_by_day() -> None:
    h = Harness.from_text(PACK)
    try:
        for c in (HELD, TREATED):
            h.customer(c, consent=dict(CONSENT))
        h.emit(TREATED, "login")
        assert h.last is not None
        day = "2026-01-01"  # the harness clock's start
        assert int(h.clock.ts // DAY) == 20454
        assert batch_totals(h.last) == {day: {"promo_on_login|promo|sent|touched": 1.0,
                                              "promo_on_login|promo|sent|sent": 1.0}}
        h.emit(HELD, "login")
        assert batch_totals(h.last) == {day: {"promo_on_login|promo|holdout|touched": 1.0}}
    finally:
        h.close()


def test_rows_sum_groups_and_compute_rates_and_uplift() -> None:
    totals = {
        "r|m|sent|sent": 1000, "r|m|sent|delivered": 990, "r|m|sent|opened": 400,
        "r|m|sent|touched": 1000, "r|m|sent|converted": 120, "r|m|sent|value": 2400.5,
        "r|m|holdout|touched": 1000, "r|m|holdout|converted": 80,
        "other|x|sent|sent": 3, "not a field": 1,
    }
    other, row = report_rows({k: float(v) for k, v in totals.items()})
    assert (other.rule, other.counts["sent"], other.uplift.verdict) == ("other", 3, "no data")
    assert other.verdict == "no goal" and other.as_dict()["verdict"] == "no goal"  # sent, no goal
    assert row.verdict == row.uplift.verdict == "significant uplift"
    assert row.conversion_rate == pytest.approx(0.12)
    assert row.uplift.control_rate == pytest.approx(0.08)
    assert row.uplift.absolute == pytest.approx(0.04) and row.uplift.significant
    data = columns([row])[0]
    assert data["value"] == 2400.5 and data["verdict"] == "significant uplift"
    json.dumps(columns([other, row]))  # JSON as it stands
    lines = to_csv([other, row]).splitlines()
    assert lines[0].startswith("rule,message,sent,delivered") and len(lines) == 3


def test_the_table_shows_the_verdict() -> None:
    from datetime import date

    from rich.console import Console

    (row,) = report_rows({"r|m|sent|touched": 50.0, "r|m|sent|converted": 6.0,
                          "r|m|holdout|touched": 50.0, "r|m|holdout|converted": 5.0})
    console = Console(width=250, record=True)
    console.print(table([row], date(2026, 1, 1), date(2026, 1, 31)))
    text = console.export_text()
    assert "not significant yet" in text and "12.00%" in text and "10.00%" in text
