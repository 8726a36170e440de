"""Every module of the engine, the connectors and the load tests stays small enough to read
in one sitting; a longer one is split by what its parts are about."""

from pathlib import Path

import pytest

import connectors
import engine
import load_tests

LIMIT = 400


@pytest.mark.parametrize("package", [engine, connectors, load_tests], ids=lambda p: p.__name__)
def test_every_module_is_under_the_limit(package: object) -> None:
    root = Path(getattr(package, "__file__", "")).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 5  # the walk found the package's modules (and their subpackages)
    sizes = {str(m.relative_to(root.parent)): len(m.read_text().splitlines()) for m in modules}
    assert {name: n for name, n in sizes.items() if n >= LIMIT} == {}
