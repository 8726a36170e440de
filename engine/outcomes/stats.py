"""Uplift statistics for the report: pure functions, no I/O.

The treated group is the customers touched by a send, the control group those held out
(``engine/pipeline/goals``). The conversion rate is conversions per touch; the uplift is
the difference of the two rates, with a two-proportion confidence interval from the
normal approximation (unpooled standard error). It is "not significant yet" while either
group is too small for that approximation (fewer than ``MIN_EXPECTED`` conversions or
non-conversions) or the interval includes zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import sqrt
from statistics import NormalDist

MIN_EXPECTED = 5  # successes and failures per group for the normal approximation


@dataclass(frozen=True, slots=True)
class Uplift:
    treated_rate: float | None
    control_rate: float | None
    absolute: float | None  # treated_rate - control_rate
    relative: float | None  # absolute / control_rate
    low: float | None  # the confidence interval of ``absolute``
    high: float | None
    significant: bool

    @property
    def verdict(self) -> str:
        if self.absolute is None:
            return "no holdout" if self.treated_rate is not None else "no data"
        if not self.significant:
            return "not significant yet"
        return "significant uplift" if self.absolute > 0 else "significant drop"


def rate(converted: float, touched: float) -> float | None:
    return converted / touched if touched > 0 else None


def uplift(treated_conv: float, treated_n: float, control_conv: float, control_n: float,
           confidence: float = 0.95) -> Uplift:
    """The uplift of treated over control (counts of conversions and of touches)."""
    p1, p0 = rate(treated_conv, treated_n), rate(control_conv, control_n)
    if p1 is None or p0 is None:
        return Uplift(p1, p0, None, None, None, None, False)
    diff = p1 - p0
    relative = diff / p0 if p0 > 0 else None
    se = sqrt(p1 * (1 - p1) / treated_n + p0 * (1 - p0) / control_n)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    low, high = diff - z * se, diff + z * se
    enough = all(min(k, n - k) >= MIN_EXPECTED
                 for k, n in ((treated_conv, treated_n), (control_conv, control_n)))
    significant = enough and (low > 0 or high < 0)
    return Uplift(p1, p0, diff, relative, low, high, significant)
