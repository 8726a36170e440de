"""Small helpers several unit test files share."""

from __future__ import annotations

from pathlib import Path

from engine.pipeline.policies import in_holdout


def one_each_side(percent: float, salt: str) -> tuple[str, str]:
    """A customer id inside a holdout and one outside it (found, not assumed)."""
    ids = [f"c{i}" for i in range(100)]
    return (next(c for c in ids if in_holdout(c, percent, salt)),
            next(c for c in ids if not in_holdout(c, percent, salt)))


def one_customer_scenario(tmp_path: Path, customer: str, at: str) -> Path:
    """A scenario file with customer ``c1`` given as ``customer`` (YAML) and one step at ``at``."""
    path = tmp_path / "sc.yaml"
    path.write_text(f'scenario: x\ncustomers:\n  c1: {customer}\nsteps:\n  - id: s1\n'
                    f'    at: "{at}"\n')
    return path
