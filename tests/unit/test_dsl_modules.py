"""The expression language's modules stay small enough to read in one sitting."""

from pathlib import Path

import engine.dsl

LIMIT = 400


def test_every_dsl_module_is_under_the_limit() -> None:
    package = Path(engine.dsl.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert "compiler.py" in sizes and "calls.py" in sizes
    assert {name: n for name, n in sizes.items() if n >= LIMIT} == {}
