"""The uplift statistics, against values worked out by hand in the test."""

from __future__ import annotations

import math

import pytest

from engine.outcomes.stats import uplift


def test_two_proportion_interval_matches_the_textbook_formula() -> None:
    # 120 of 1000 treated, 80 of 1000 held out converted
    u = uplift(120, 1000, 80, 1000)
    se = math.sqrt(0.12 * 0.88 / 1000 + 0.08 * 0.92 / 1000)  # 0.0133866
    assert u.absolute == pytest.approx(0.04)
    assert u.relative == pytest.approx(0.5)
    assert u.low == pytest.approx(0.04 - 1.959964 * se, abs=1e-6)
    assert u.high == pytest.approx(0.04 + 1.959964 * se, abs=1e-6)
    assert u.low == pytest.approx(0.013763, abs=1e-5)  # computed independently
    assert u.significant and u.verdict == "significant uplift"


def test_an_interval_that_includes_zero_is_not_significant_yet() -> None:
    u = uplift(11, 100, 10, 100)
    assert u.low is not None and u.low < 0 < (u.high or 0)
    assert not u.significant and u.verdict == "not significant yet"


def test_too_few_conversions_are_not_significant_even_with_a_wide_gap() -> None:
    u = uplift(4, 10, 0, 10)  # the interval excludes 0, but the approximation does not hold
    assert u.low is not None and u.low > 0
    assert not u.significant and u.verdict == "not significant yet"


def test_a_drop_is_reported_as_such() -> None:
    assert uplift(50, 1000, 100, 1000).verdict == "significant drop"


def test_without_a_holdout_there_is_no_uplift() -> None:
    u = uplift(5, 50, 0, 0)
    assert (u.treated_rate, u.absolute, u.verdict) == (0.1, None, "no holdout")
    assert uplift(0, 0, 0, 0).verdict == "no data"
    assert uplift(5, 50, 0, 50).relative is None  # no relative uplift over a zero rate
