"""Tact's build backend: setuptools', plus the opt-in mypyc-compiled core.

A plain ``pip install .`` builds pure Python and needs nothing beyond setuptools.
``TACT_COMPILE=1 pip install .`` compiles the modules listed in ``engine/compiled.py``
with mypyc; only then are mypy and the project's dependencies build requirements (mypyc
type-checks the modules against what they import, with the repo's mypy settings).

pyproject.toml names this module as the backend (``backend-path = ["."]``); setup.py
asks it for the extension modules. It is not part of the installed package.
"""

from __future__ import annotations

import os
import runpy
import tomllib
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "compile_requested",
    "compiled_paths",
    "ext_modules",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

ROOT = Path(__file__).resolve().parent
COMPILE_ENV = "TACT_COMPILE"
MYPY = "mypy>=1.18"  # group_name and Python 3.11 support as used here


def compile_requested(environ: dict[str, str] | None = None) -> bool:
    """Whether the environment asks for the compiled core (TACT_COMPILE=1/true/yes)."""
    value = (os.environ if environ is None else environ).get(COMPILE_ENV, "")
    return value.strip().lower() in ("1", "true", "yes")


def _listed(root: Path = ROOT) -> dict[str, Any]:
    # read without importing the package (its dependencies need not be installed yet)
    return runpy.run_path(str(root / "engine" / "compiled.py"))


def compiled_paths(root: Path = ROOT) -> list[str]:
    """The source files of the compiled modules, relative to ``root``."""
    listed: tuple[str, ...] = _listed(root)["COMPILED_MODULES"]
    return [name.replace(".", "/") + ".py" for name in listed]


def group_name(root: Path = ROOT) -> str:
    """mypyc's group: its shared library lands inside the package (engine/core__mypyc.*.so),
    not as a top-level module beside it."""
    group: str = _listed(root)["GROUP"]
    return group


# setuptools runs setup.py to find its build requirements (before mypy is installed) and
# to write the metadata: neither needs the compiled modules
_metadata_only = False


def ext_modules() -> list[Any]:
    """The extensions for setup(): none unless the compiled core was asked for."""
    if not compile_requested() or _metadata_only:
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(f"{COMPILE_ENV}=1 needs mypy (its mypyc) where the package is built: "
                         "pip installs it unless run with --no-build-isolation") from None

    extensions: list[Any] = mypycify(compiled_paths(), opt_level="3", group_name=group_name())
    _listed()["write_stamp"](str(ROOT))  # what was compiled: tells a later edit (tact version)
    return extensions


def _compile_requires() -> list[str]:
    if not compile_requested():
        return []
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return [MYPY, *project["dependencies"]]


def _metadata_only_while(hook: Any, *args: Any) -> Any:
    global _metadata_only
    _metadata_only = True
    try:
        return hook(*args)
    finally:
        _metadata_only = False


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return [*_metadata_only_while(_setuptools.get_requires_for_build_wheel, config_settings),
            *_compile_requires()]


def get_requires_for_build_editable(
    config_settings: dict[str, Any] | None = None,
) -> list[str]:
    return [*_metadata_only_while(_setuptools.get_requires_for_build_editable, config_settings),
            *_compile_requires()]


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None,
) -> str:
    return str(_metadata_only_while(_setuptools.prepare_metadata_for_build_wheel,
                                    metadata_directory, config_settings))


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: dict[str, Any] | None = None,
) -> str:
    return str(_metadata_only_while(_setuptools.prepare_metadata_for_build_editable,
                                    metadata_directory, config_settings))
