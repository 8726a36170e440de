"""A scenario's starting state gives declared sets (member -> when it was added) and maps
(key -> value and when it was put), checked against the pack with file:line:col errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.errors import ScenarioError
from engine.pack.model import RulePack
from engine.scenarios import load_scenario
from tests.unit.helpers import one_customer_scenario

T0 = "2026-06-01T10:00:00+02:00"
START = datetime.fromisoformat(T0).timestamp()


def _scenario(tmp_path: Path, customer: str) -> Path:
    return one_customer_scenario(tmp_path, customer, T0)


def test_members_and_entries_become_the_engines_state(pack: RulePack, tmp_path: Path) -> None:
    path = _scenario(tmp_path, "{sets: {returned_categories: {shoes: -2d, garden: "
                               "'2026-05-30T08:00:00+00:00'}}, "
                               "maps: {last_viewed_price: {LAMP-1: {value: 80, at: -3h}, "
                               "7: {value: 9.5, at: -1d}}}}")
    [state] = load_scenario(path).states(pack)
    assert state.sets == {"returned_categories": {
        "shoes": START - 2 * 86400,
        "garden": datetime.fromisoformat("2026-05-30T08:00:00+00:00").timestamp()}}
    assert state.maps == {"last_viewed_price": {"LAMP-1": [80.0, START - 3 * 3600],
                                                "7": [9.5, START - 86400]}}
    assert type(state.maps["last_viewed_price"]["LAMP-1"][0]) is float  # as put: keeps it


@pytest.mark.parametrize("customer, where, message", [
    ("{sets: {returned_categorie: {shoes: -1d}}}", "3:15",
     "customer c1: sets: no set 'returned_categorie' in the pack (it has: "
     "returned_categories)"),
    ("{maps: {last_viewed: {A: {value: 1, at: -1d}}}}", "3:15",
     "customer c1: maps: no map 'last_viewed' in the pack (it has: last_viewed_price)"),
    ("{maps: {last_viewed_price: {A: {value: cheap, at: -1d}}}}", "3:46",
     "customer c1: maps: 'last_viewed_price' holds float values, not 'cheap'"),
    ("{maps: {last_viewed_price: {A: {value: 1, at: soon}}}}", "3:53",
     "customers.c1.maps.last_viewed_price.A.at: 'soon' is neither an ISO 8601 time"),
    ("{maps: {last_viewed_price: {A: {value: 1}}}}", "3:38",
     "missing required key 'at' in customers.c1.maps.last_viewed_price.A"),
    ("{maps: {last_viewed_price: {A: {value: [1], at: -1d}}}}", "3:46",
     "customers.c1.maps.last_viewed_price.A.value: a map's value is text, a number or "
     "true/false, not [1]"),
    ("{sets: {returned_categories: {shoes: later}}}", "3:44",
     "customers.c1.sets.returned_categories.shoes: 'later' is neither an ISO 8601 time"),
    ("{sets: {returned_categories: {" + "x" * 201 + ": -1d}}}", "3:240",
     "customers.c1.sets.returned_categories." + "x" * 201 + ": a member is at most 200 "
     "characters, this one has 201"),
    ("{sets: {returned_categories: [shoes]}}", "3:36",
     "customers.c1.sets.returned_categories: Input should be a valid dictionary"),
    ("{sets: {returned_categories: {" + ", ".join(f"c{i}: -1d" for i in range(51)) + "}}}",
     "3:36", "customer c1: sets: 'returned_categories' keeps at most 50, 51 given"),
])
def test_bad_sets_and_maps_are_an_error_at_their_place(
    pack: RulePack, tmp_path: Path, customer: str, where: str, message: str
) -> None:
    path = _scenario(tmp_path, customer)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path).states(pack)
    assert str(info.value).startswith(f"{path}:{where}: error: {message}"), str(info.value)
