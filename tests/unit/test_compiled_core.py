"""The opt-in compiled core (mypyc): what the build compiles is what engine/compiled.py
lists, every listed module gets through mypyc, nothing interpreted subclasses a compiled
class, and the runtime says truthfully whether the core runs compiled."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import connectors
import engine
import tact_build
from engine.cli import _register, app
from engine.compiled import (
    COMPILED,
    COMPILED_MODULES,
    PURE,
    CoreBuild,
    core_build,
    stale_modules,
    write_stamp,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_build_compiles_exactly_the_listed_modules() -> None:
    paths = tact_build.compiled_paths()
    assert len(set(COMPILED_MODULES)) == len(COMPILED_MODULES) == len(paths)
    missing = [p for p in paths if not (REPO / p).is_file()]
    assert missing == []
    assert sorted(p.removesuffix(".py").replace("/", ".") for p in paths) == sorted(
        COMPILED_MODULES)


def test_compiling_is_opt_in() -> None:
    assert not tact_build.compile_requested({})
    assert not tact_build.compile_requested({"TACT_COMPILE": "0"})
    assert tact_build.compile_requested({"TACT_COMPILE": "1"})
    assert tact_build.compile_requested({"TACT_COMPILE": " Yes "})


def _engine_modules() -> list[str]:
    names = []
    for package in (engine, connectors):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):  # running it would start a program
                names.append(info.name)
    return names


def test_no_interpreted_class_subclasses_a_compiled_one() -> None:
    # compiled, such a class fails the import ("interpreted classes cannot inherit from
    # compiled"), so only a compiled build would find it: find it here, built or not
    listed = set(COMPILED_MODULES)
    offenders = []
    for name in _engine_modules():
        if name in listed:
            continue
        for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
            if cls.__module__ != name:
                continue
            bases = [b for b in cls.__mro__[1:] if b.__module__ in listed]
            if bases:
                offenders.append(f"{name}.{cls.__qualname__} < {bases[0].__qualname__}")
    assert offenders == []


def test_the_listed_modules_compile_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """mypyc's front and middle end (type check with the repo's settings, IR, C source):
    where an unsupported construct or a type error in a listed module shows; the C compiler
    is not run."""
    build = pytest.importorskip("mypyc.build")
    options = pytest.importorskip("mypyc.options")
    monkeypatch.chdir(REPO)  # the mypy settings in pyproject.toml, the paths relative to it
    compiler_options = options.CompilerOptions(target_dir=str(tmp_path),
                                               group_name=tact_build.group_name())
    try:
        groups, _, _ = build.mypyc_build(tact_build.compiled_paths(), compiler_options)
    except SystemExit:
        pytest.fail(f"mypyc failed:\n{capsys.readouterr().out}")
    compiled = {source.module for group_sources, _ in groups for source in group_sources}
    assert compiled == set(COMPILED_MODULES)


def test_a_source_edited_after_the_build_is_stale(tmp_path: Path) -> None:
    modules = ("engine.pipeline.core", "engine.dsl.runtime")
    for name in modules:
        source = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"# {name}\n")
    assert stale_modules(str(tmp_path), modules) == ()  # no stamp: no build to compare with
    write_stamp(str(tmp_path), modules)
    assert stale_modules(str(tmp_path), modules) == ()
    (tmp_path / "engine" / "dsl" / "runtime.py").write_text("# edited\n")
    assert stale_modules(str(tmp_path), modules) == ("engine.dsl.runtime",)
    (tmp_path / "engine" / "dsl" / "runtime.py").unlink()  # a wheel without the sources
    assert stale_modules(str(tmp_path), modules) == ()


def test_describe_names_what_runs() -> None:
    assert CoreBuild(compiled=(), pure=("a",), stale=()).describe() == PURE
    assert CoreBuild(compiled=("a", "b"), pure=(), stale=()).describe() == COMPILED
    mixed = CoreBuild(compiled=("a",), pure=("b",), stale=("a",)).describe()
    assert mixed.startswith(COMPILED)
    assert "except b (pure Python)" in mixed
    assert "STALE: a edited after the build" in mixed


def test_core_build_reports_how_this_process_runs_the_core() -> None:
    report = core_build()
    files = {name: importlib.import_module(name).__file__ or "" for name in COMPILED_MODULES}
    assert set(report.compiled) == {n for n, f in files.items() if f.endswith(".so")}
    assert set(report.pure) == {n for n, f in files.items() if f.endswith(".py")}
    assert not report.stale


def test_tact_version_says_whether_the_core_is_compiled() -> None:
    _register()
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"tact {engine.__version__} (core: {core_build().describe()})"


def test_the_docker_image_gets_what_the_build_backend_needs() -> None:
    # pyproject.toml names tact_build (backend-path "."), which runs setup.py: an image
    # that copies only pyproject.toml cannot `pip install .`
    lines = (REPO / "Dockerfile").read_text().splitlines()
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    copied = {word for line in lines[:install] if line.startswith("COPY")
              for word in line.split()[1:-1]}
    assert {"pyproject.toml", "setup.py", "tact_build.py", "engine"} <= copied
