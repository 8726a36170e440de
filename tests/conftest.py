"""Shared test fixtures: the repository, the example pack, its scenarios, the shared ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.pack.loader import load_pack
from engine.pack.model import RulePack

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
# The project's own scenario suite for the example pack (`tact rules test rules/` runs it).
SCENARIOS = RULES / "scenarios"
# A second example pack, outside rules/ so the loader does not merge it into the first.
RETAIL = REPO / "examples" / "retail"
# The acceptance scenarios beside the repository, where there are any (not in a clone alone).
_SHARED = REPO.parent / "shared" / "scenarios"
SHARED_SCENARIOS: Path | None = _SHARED if _SHARED.is_dir() else None
NO_SHARED = f"no shared acceptance scenarios beside the repository ({_SHARED} does not exist)"


def scenario_files(where: Path | None) -> list[Path]:
    return sorted(where.glob("*.yaml")) if where is not None else []


@pytest.fixture(scope="session")
def pack() -> RulePack:
    return load_pack(RULES)
