"""Experience KPIs (NPS, CSAT, CES): declared in the pack, counted by the core per band,
computed for a period (engine/pipeline/kpis, engine/outcomes/kpis). The expected figures
are computed here from the raw answers, by the textbook definitions."""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cli.report import kpi_table, kpis_csv
from engine.errors import RulePackError
from engine.observability.metrics import Metrics
from engine.outcomes.aggregate import kpi_totals
from engine.outcomes.kpis import BANDS, SUM, band, summaries, summarize
from engine.pack.loader import load_pack, load_pack_text
from engine.pipeline.kpis import DAY
from engine.testing import Harness

PACK = """
channels: [push]
events:
  nps_submitted: {data: {score: int, comment: str}}
  csat_submitted: {data: {rating: number}}
  ces_submitted: {data: {effort: int}}
kpis:
  nps: {event: nps_submitted, score: event.data.score}
  csat: {event: csat_submitted, score: event.data.rating}
  ces: {event: ces_submitted, score: event.data.effort, scale: 5}
"""


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness.from_text(PACK)
    yield harness
    harness.close()


def _nps(scores: list[int]) -> float:
    promoters = sum(1 for s in scores if s in (9, 10))
    detractors = sum(1 for s in scores if 0 <= s <= 6)
    return 100 * promoters / len(scores) - 100 * detractors / len(scores)


def test_the_core_counts_answers_and_the_period_gives_the_textbook_figures(h: Harness) -> None:
    rng = random.Random(7)
    nps = [rng.randint(0, 10) for _ in range(60)]
    csat = [rng.randint(1, 5) for _ in range(40)]
    ces = [rng.randint(1, 5) for _ in range(30)]
    totals: dict[str, float] = {}
    for i, score in enumerate(nps):
        h.emit(f"c{i}", "nps_submitted", {"score": score, "comment": ""})
        assert h.last is not None
        for fields in kpi_totals(h.last).values():
            for k, v in fields.items():
                totals[k] = totals.get(k, 0.0) + v
        h.clock.advance("1h")  # over several days: a period sums them
    for i, score in enumerate(csat):
        h.emit(f"s{i}", "csat_submitted", {"rating": float(score)})  # 4.0 is a whole answer
        assert h.last is not None
        for fields in kpi_totals(h.last).values():
            for k, v in fields.items():
                totals[k] = totals.get(k, 0.0) + v
    for i, score in enumerate(ces):
        h.emit(f"e{i}", "ces_submitted", {"effort": score})
        assert h.last is not None
        for fields in kpi_totals(h.last).values():
            for k, v in fields.items():
                totals[k] = totals.get(k, 0.0) + v
    got = {s.kpi: s for s in summaries(totals)}
    assert got["nps"].responses == len(nps)
    assert got["nps"].value == pytest.approx(_nps(nps))
    assert got["csat"].value == pytest.approx(100 * sum(s >= 4 for s in csat) / len(csat))
    assert got["ces"].value == pytest.approx(statistics.mean(ces))
    assert got["nps"].bands["passive"] == sum(s in (7, 8) for s in nps)


@given(st.lists(st.integers(0, 10), min_size=1, max_size=200))
def test_nps_from_bands_is_promoters_minus_detractors(scores: list[int]) -> None:
    stats: dict[str, float] = {SUM: float(sum(scores))}
    for s in scores:
        stats[band("nps", s, 10)] = stats.get(band("nps", s, 10), 0.0) + 1
    got = summarize("nps", stats)
    assert got.value == pytest.approx(_nps(scores))
    assert got.mean == pytest.approx(statistics.mean(scores))
    assert -100 <= (got.value or 0) <= 100


@given(st.integers(3, 10), st.data())
def test_csat_is_the_share_of_the_top_two_answers_on_any_scale(scale: int,
                                                               data: st.DataObject) -> None:
    scores = data.draw(st.lists(st.integers(1, scale), min_size=1, max_size=100))
    stats: dict[str, float] = {}
    for s in scores:
        stats[band("csat", s, scale)] = stats.get(band("csat", s, scale), 0.0) + 1
    top_two = {scale, scale - 1}
    expected = 100 * len([s for s in scores if s in top_two]) / len(scores)
    assert summarize("csat", stats).value == pytest.approx(expected)


def test_no_answers_is_no_figure() -> None:
    got = summarize("nps", {})
    assert (got.responses, got.value, got.mean) == (0.0, None, None)


@pytest.mark.parametrize("answer,why", [
    (11, "outside 0 to 10"), (-1, "outside 0 to 10"), (8.5, "not a whole number"),
    (None, "not a number"),
])
def test_an_answer_that_cannot_be_counted_is_a_fault_not_a_score(h: Harness, answer: object,
                                                                  why: str) -> None:
    h.emit("c1", "nps_submitted", {"score": answer, "comment": ""})
    assert h.last is not None and h.last.kpis == {}
    (fault,) = h.last.faults
    assert fault.rule == "kpi:nps" and why in fault.error


def test_an_answer_is_counted_on_its_events_day(h: Harness) -> None:
    h.emit("c1", "nps_submitted", {"score": 9, "comment": "great"})
    assert h.last is not None
    day = int(h.clock.ts // DAY)
    assert h.last.kpis == {(day, "nps", "promoter"): 1.0, (day, "nps", SUM): 9.0}


# -- errors at load, each at file:line:col -------------------------------------------------
def _issues(text: str) -> list[tuple[str, int | None]]:
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, "p.yaml")
    return [(i.message, i.location.line if i.location else None) for i in err.value.issues]


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_an_unknown_kpi_gets_a_hint() -> None:
    text = PACK.replace("  ces: {", "  cess: {")
    ((msg, line),) = _issues(text)
    assert "unknown key 'cess'" in msg and "'ces'" in msg and line == _line(text, "cess:")


def test_a_kpi_names_a_declared_event_with_a_hint() -> None:
    text = PACK.replace("nps: {event: nps_submitted", "nps: {event: nps_submited")
    ((msg, line),) = _issues(text)
    assert "undeclared event type 'nps_submited'" in msg and "nps_submitted" in msg
    assert line == _line(text, "nps_submited")


def test_a_score_must_be_a_number_and_its_fields_exist() -> None:
    text = PACK.replace("score: event.data.score}", "score: event.data.comment}")
    ((msg, line),) = _issues(text)
    assert "a nps score is a whole number" in msg and "str" in msg
    assert line == _line(text, "event.data.comment")
    text = PACK.replace("score: event.data.score}", "score: event.data.scor}")
    ((msg, _),) = _issues(text)
    assert "scor" in msg and "score" in msg  # the expression compiler's own did-you-mean


def test_nps_has_no_scale_and_a_scale_is_bounded() -> None:
    ((msg, _),) = _issues(PACK.replace("event.data.score}", "event.data.score, scale: 5}"))
    assert "unknown key 'scale'" in msg
    ((msg, _),) = _issues(PACK.replace("scale: 5", "scale: 11"))
    assert "less than or equal to 10" in msg


def test_a_kpi_is_declared_once_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(PACK)
    (tmp_path / "b.yaml").write_text(
        "kpis:\n  nps: {event: nps_submitted, score: event.data.score}\n")
    with pytest.raises(RulePackError) as err:
        load_pack(tmp_path)
    assert any("kpi 'nps' is declared twice" in i.message for i in err.value.issues)


def test_the_example_pack_declares_nps_on_its_survey_event() -> None:
    pack = load_pack(Path(__file__).parents[2] / "rules")
    (kpi,) = pack.kpis["nps_submitted"]
    assert (kpi.name, kpi.low, kpi.high) == ("nps", 0, 10)


# -- shown: csv, table, Prometheus ---------------------------------------------------------
def test_csv_and_table_show_each_kpi() -> None:
    kpis = summaries({"nps|promoter": 3, "nps|detractor": 1, "nps|sum": 30, "ces|all": 2,
                      "ces|sum": 7})
    lines = kpis_csv(kpis).splitlines()
    assert lines[0].startswith("kpi,responses,value,mean,promoter,passive,detractor")
    assert lines[1].startswith("nps,4.0,50.0,7.5,3.0,0.0,1.0")
    assert lines[2].startswith("ces,2.0,3.5,3.5,")
    from datetime import date

    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(kpi_table(kpis, date(2026, 1, 1), date(2026, 1, 31)))
    text = console.export_text()
    assert "+50.0" in text and "3.50" in text


def test_prometheus_counts_answers_by_band_and_the_score_sum() -> None:
    m = Metrics()
    m.count_kpis({(1, "nps", "promoter"): 2.0, (1, "nps", "detractor"): 1.0,
                  (1, "nps", SUM): 22.0})
    body = m.render().decode()
    assert 'tact_kpi_responses_total{band="promoter",kpi="nps"} 2.0' in body
    assert 'tact_kpi_score_sum_total{kpi="nps"} 22.0' in body
    assert set(BANDS) == {"nps", "csat", "ces"}
