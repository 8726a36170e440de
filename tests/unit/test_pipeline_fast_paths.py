"""The pipeline's hot-path shortcuts decide exactly what the explained (traced) path decides.

``trace=True`` takes the long way (every check noted); ``trace=False`` the fast one (memoised
scopes, reasons without notes). On generated traffic over both packs, the decisions must be
the same, field for field, but for the trace itself.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from engine.models.event import Envelope, parse_event
from engine.models.state import CustomerState
from engine.pack.loader import load_pack
from engine.pipeline import decide
from load_tests.generator import generate_events

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pack_dir", ["rules", "load_tests/packs/loadtest"])
def test_fast_path_decides_what_the_traced_path_decides(pack_dir: str) -> None:
    pack = load_pack(REPO / pack_dir)
    start = time.time() - 3 * 86400
    envs = [Envelope(ev, ev.at.timestamp() + (i % 7) * 600)
            for i, ev in enumerate(parse_event(e) for e in generate_events(4000, 150, 3, start,
                                                                         step=30.0))]
    seed = {f"c{i:06d}": CustomerState(f"c{i:06d}", consent={"push": i % 3 > 0,
                                                             "email": i % 2 == 0})
            for i in range(150)}
    fast_states, slow_states = copy.deepcopy(seed), copy.deepcopy(seed)
    fast, slow = [], []
    for i in range(0, len(envs), 500):  # batches: the memo lives for one batch
        fast += decide(pack, fast_states, envs[i:i + 500]).decisions
        slow += decide(pack, slow_states, envs[i:i + 500], trace=True).decisions

    def strip(d: object) -> dict[str, object]:
        values = dict(d.__dict__)
        values.pop("trace")
        return values

    assert len(fast) == len(slow) > 1000
    assert [strip(d) for d in fast] == [strip(d) for d in slow]
    assert {r for d in fast for r in d.reasons} >= {"no_consent", "cooldown", "frequency_cap"}
    assert fast_states == slow_states
