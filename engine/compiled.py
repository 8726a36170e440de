"""The opt-in compiled core: which modules mypyc compiles, and whether this process runs them.

``TACT_COMPILE=1 pip install .`` (or ``make compile``) compiles :data:`COMPILED_MODULES`
with mypyc; a plain install runs the same modules as Python. The build (``tact_build.py``)
reads the list from this file without importing the package, so this module imports only
the standard library.

Not in the list, and why: ``engine.dsl.compiler`` (mypyc fails on it, and it only runs at
load; the rule conditions it generates are Python code objects either way);
``engine.dsl.paths`` (load-time only, and the compiler's ``CallChecker`` subclasses its
``PathResolver``: an interpreted class cannot subclass a compiled one);
``engine.models.event`` (mypyc's C for its pydantic model does not compile);
``engine.models.decision`` (``DecisionRecord`` is written from its ``__dict__``, which a
compiled class does not have).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.machinery import EXTENSION_SUFFIXES

# the decide path: the pipeline, the DSL's runtime helpers, the state records
COMPILED_MODULES: tuple[str, ...] = (
    "engine.pipeline.campaign",
    "engine.pipeline.choice",
    "engine.pipeline.core",
    "engine.pipeline.engagement",
    "engine.pipeline.goals",
    "engine.pipeline.guards",
    "engine.pipeline.keyed",
    "engine.pipeline.kpis",
    "engine.pipeline.maps",
    "engine.pipeline.policies",
    "engine.pipeline.quiet",
    "engine.pipeline.scopes",
    "engine.pipeline.state_ops",
    "engine.pipeline.views",
    "engine.dsl.calendar",
    "engine.dsl.durations",
    "engine.dsl.functions",
    "engine.dsl.runtime",
    "engine.dsl.timefns",
    "engine.dsl.valuefns",
    "engine.models.packing",
    "engine.models.records",
    "engine.models.state",
    "engine.models.wire_checks",
    "engine.pack.model",
)

# mypyc's group: the compiled code is one shared library, engine/core__mypyc.<tag>.so
GROUP = "engine.core"
# written by the build beside this file: each compiled module's source hash, to tell an
# edit after the build (file times cannot: a rebuild of unchanged C leaves them)
STAMP = "compiled_sources.json"

COMPILED = "compiled (mypyc)"
PURE = "pure Python"


@dataclass(frozen=True, slots=True)
class CoreBuild:
    """How the core runs here. ``compiled``: the listed modules loaded from a mypyc
    extension; ``stale``: those whose source changed after the build (the process runs the
    old code)."""

    compiled: tuple[str, ...]
    pure: tuple[str, ...]
    stale: tuple[str, ...]

    def describe(self) -> str:
        if not self.compiled:
            return PURE
        text = COMPILED
        if self.pure:
            text += f", except {', '.join(self.pure)} (pure Python)"
        if self.stale:
            text += (f"; STALE: {', '.join(self.stale)} edited after the build "
                     "(the old code runs; rebuild with `make compile`)")
        return text


def is_extension(path: str | None) -> bool:
    """Whether ``path`` is a compiled extension module's file."""
    return path is not None and path.endswith(tuple(EXTENSION_SUFFIXES))


def source_hash(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def write_stamp(root: str, modules: Iterable[str] = COMPILED_MODULES) -> None:
    """Record the hash of each module's source under ``root`` (the build calls this with
    the sources it compiles)."""
    hashes = {name: source_hash(os.path.join(root, *name.split(".")) + ".py")
              for name in modules}
    with open(os.path.join(root, "engine", STAMP), "w") as f:
        json.dump(hashes, f, indent=1, sort_keys=True)


def stale_modules(root: str, modules: Iterable[str]) -> tuple[str, ...]:
    """Those of ``modules`` whose source under ``root`` differs from the build's stamp.
    No stamp (an installed wheel has none: edits there are not ours to track) or no
    source: none."""
    try:
        with open(os.path.join(root, "engine", STAMP)) as f:
            built: dict[str, str] = json.load(f)
    except FileNotFoundError:
        return ()
    stale = []
    for name in modules:
        source = os.path.join(root, *name.split(".")) + ".py"
        if os.path.exists(source) and built.get(name) != source_hash(source):
            stale.append(name)
    return tuple(stale)


def core_build(modules: tuple[str, ...] = COMPILED_MODULES) -> CoreBuild:
    """Import ``modules`` and report which of them run compiled, and which of those are
    stale. (Found by each module's file name; mypyc sets ``__file__`` to a wrong directory
    for a module first imported by another compiled one, but the name is right.)"""
    compiled = tuple(name for name in modules
                     if is_extension(getattr(importlib.import_module(name), "__file__", None)))
    # the package's own directory is right (engine/__init__.py is Python)
    root = os.path.dirname(os.path.dirname(os.path.abspath(importlib.import_module(
        "engine").__file__ or "")))
    return CoreBuild(
        compiled=compiled,
        pure=tuple(name for name in modules if name not in compiled),
        stale=stale_modules(root, compiled),
    )
