"""A scenario's starting state gives keyed contexts, counters and timestamps as their
instances (key -> value), checked against the pack with file:line:col errors."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.errors import ScenarioError
from engine.models.state import KEY_SEP
from engine.pack.model import RulePack
from engine.scenarios import load_scenario
from tests.unit.helpers import one_customer_scenario

T0 = "2026-06-01T10:00:00+02:00"
START = datetime.fromisoformat(T0).timestamp()


def _scenario(tmp_path: Path, customer: str) -> Path:
    return one_customer_scenario(tmp_path, customer, T0)


def test_keyed_instances_become_the_engines_entries(pack: RulePack, tmp_path: Path) -> None:
    path = _scenario(tmp_path, "{counters: {failed_deliveries: {P-1: 2, 7: 1}, purchases: 3}, "
                               "timestamps: {last_failed_delivery: {P-1: -1h}}, "
                               "contexts: {pending_quote: {Q-1: 1d}, in_transit: 2h}}")
    [state] = load_scenario(path).states(pack)
    assert state.counters == {f"failed_deliveries{KEY_SEP}P-1": 2.0,
                              f"failed_deliveries{KEY_SEP}7": 1.0, "purchases": 3.0}
    assert state.timestamps == {f"last_failed_delivery{KEY_SEP}P-1": START - 3600}
    assert state.contexts == {f"pending_quote{KEY_SEP}Q-1": START + 86400,
                              "in_transit": START + 7200}


@pytest.mark.parametrize("customer, where, message", [
    ("{counters: {failed_deliveries: 1}}", "3:38",
     "customer c1: counters: the counter 'failed_deliveries' is kept per key in the pack: "
     "give its instances, key: value"),
    ("{counters: {purchases: {O-1: 1}}}", "3:30",
     "customer c1: counters: the counter 'purchases' has no key in the pack: give it one "
     "value, not instances"),
    ("{contexts: {pending_quote: 2d}}", "3:34",
     "customer c1: contexts: the context 'pending_quote' is kept per key in the pack"),
    ("{contexts: {in_transit: {X: 2d}}}", "3:31",
     "customer c1: contexts: the context 'in_transit' has no key in the pack"),
    ("{timestamps: {last_purchase: {O-1: -1h}}}", "3:36",
     "customer c1: timestamps: the timestamp 'last_purchase' has no key in the pack"),
    ("{counters: {failed_deliverie: {P-1: 1}}}", "3:19",
     "customer c1: counters: no counter 'failed_deliverie' in the pack (it has: "
     "failed_deliveries)"),
    ("{counters: {failed_deliveries: {P-1: many}}}", "3:44",
     "customers.c1.counters.failed_deliveries.P-1: expected a number, got 'many'"),
    ("{timestamps: {last_failed_delivery: {P-1: soon}}}", "3:49",
     "customers.c1.timestamps.last_failed_delivery.P-1: 'soon' is neither an ISO 8601 time"),
    ("{contexts: {pending_quote: {" + "Q" * 201 + ": 1d}}}", "3:238",
     "customers.c1.contexts.pending_quote." + "Q" * 201 + ": a key is at most 200 "
     "characters, this one has 201"),
])
def test_bad_keyed_starting_state_is_an_error_at_its_place(
    pack: RulePack, tmp_path: Path, customer: str, where: str, message: str
) -> None:
    path = _scenario(tmp_path, customer)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path).states(pack)
    assert str(info.value).startswith(f"{path}:{where}: error: {message}"), str(info.value)
