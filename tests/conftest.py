"""Shared test fixtures: the repository, the example pack, the shared scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.pack.loader import load_pack
from engine.pack.model import RulePack

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
SCENARIOS = REPO.parent / "shared" / "scenarios"


@pytest.fixture(scope="session")
def pack() -> RulePack:
    return load_pack(RULES)
