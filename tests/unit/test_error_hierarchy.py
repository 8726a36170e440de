"""One root exception (httpx's model): every public error Tact raises is a TactError leaf
with a docstring, so a caller can catch Tact's errors apart from everyone else's."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import connectors
import engine
from engine.errors import TactError

# internal control flow, raised and caught inside their own modules, never seen by a caller
INTERNAL = {"RecordFailed", "WriteRefused", "_Refused", "_RefusedConstruct", "BadScore"}


def _error_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (engine, connectors):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and issubclass(obj, BaseException)
                        and obj.__module__ == module.__name__ and name not in INTERNAL):
                    found[f"{obj.__module__}.{name}"] = obj
    return list(found.values())


def test_every_public_error_is_a_documented_tact_error() -> None:
    classes = _error_classes()
    assert len(classes) > 15  # the walk found the package's errors
    strays = [f"{c.__module__}.{c.__name__}" for c in classes if not issubclass(c, TactError)]
    undocumented = [f"{c.__module__}.{c.__name__}" for c in classes
                    if c is not TactError and not (c.__doc__ or "").strip()]
    assert strays == []
    assert undocumented == []
