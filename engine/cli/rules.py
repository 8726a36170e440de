"""`tact rules check | test | schema | docs`: validate, run scenarios, publish the JSON Schema
and the reference (docs/rules.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console

from engine.errors import RulePackError, ScenarioError
from engine.pack.loader import SCENARIOS_DIR, load_pack
from engine.pack.model import RulePack
from engine.pack.schema import json_schema

app = typer.Typer(no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SCHEMA_FILE = Path("rules") / "tact-rules.schema.json"
DOCS_FILE = Path("docs") / "rules.md"


def load_or_exit(paths: list[Path]) -> RulePack:
    """Load a pack; on errors print every issue (file:line:col, rule, caret) and exit 1."""
    try:
        return load_pack(paths)
    except RulePackError as exc:
        for issue in exc.issues:
            err.print(issue.render(), markup=False)
        n = sum(1 for i in exc.issues if i.severity == "error")
        err.print(f"[red]rule pack rejected: {n} error(s)[/red]")
        raise typer.Exit(1) from None


@app.command()
def check(
    paths: list[Path] = typer.Argument(None, help="Rule files or directories (default: rules/)."),
    strict: bool = typer.Option(False, help="Fail on warnings (static findings) too."),
) -> None:
    """Validate a rule pack and report static findings."""
    pack = load_or_exit(paths or [Path("rules")])
    for f in pack.findings:
        out.print(f.render(), markup=False)
    out.print(f"[green]ok[/green] {pack.summary()}; {len(pack.findings)} warning(s)")
    if strict and pack.findings:
        raise typer.Exit(1)


@app.command()
def test(
    rules: list[Path] = typer.Argument(None, help="Rule files or directories (default: rules/)."),
    scenarios: list[Path] = typer.Option(
        None, "--scenarios",
        help="A scenario file or a directory of them (default: each pack directory's "
        "scenarios/).",
    ),
    verbose: bool = typer.Option(False, "-v", help="Show every step's decisions."),
) -> None:
    """Run scenario files against a pack: one line per scenario, then 'N passed, M failed'."""
    from engine.scenarios import load_scenarios, run_scenario

    paths = rules or [Path("rules")]
    pack = load_or_exit(paths)
    where = scenarios or [p / SCENARIOS_DIR for p in paths if (p / SCENARIOS_DIR).is_dir()]
    if not where:
        looked = ", ".join(str(p / SCENARIOS_DIR) for p in paths if p.is_dir()) or "none"
        err.print(f"no scenarios: no {SCENARIOS_DIR}/ directory in the pack (looked for: "
                  f"{looked}); write them there or give --scenarios FILE|DIR", markup=False)
        raise typer.Exit(1)
    try:
        loaded = [sc for place in where for sc in load_scenarios(place)]
    except ScenarioError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    if not loaded:
        err.print(f"no scenarios (*.yaml) found in {', '.join(map(str, where))}", markup=False)
        raise typer.Exit(1)
    passed = failed = 0
    for sc in loaded:
        try:
            result = asyncio.run(run_scenario(pack, sc))
        except ScenarioError as exc:  # a starting state the pack cannot take
            failed += 1
            out.print(f"[red]FAIL[/red] {sc.scenario}")
            out.print(f"    {exc}", markup=False)
            continue
        if result.passed:
            passed += 1
            out.print(f"[green]PASS[/green] {sc.scenario}")
        else:
            failed += 1
            out.print(f"[red]FAIL[/red] {sc.scenario}")
            for p in result.problems:
                out.print(f"    {p}", markup=False)
        if verbose:
            for step in result.steps:
                for d in step.decisions:
                    why = f" ({', '.join(d.reasons)})" if d.reasons else ""
                    out.print(
                        f"    {step.step}: {d.customer} {d.message}/{d.channel} {d.outcome}{why}",
                        markup=False,
                    )
    out.print(f"{passed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command()
def schema(
    write: Path | None = typer.Option(None, help=f"Write to a file (e.g. {SCHEMA_FILE})."),
    check_file: Path | None = typer.Option(
        None, "--check", help="Exit 1 if this file differs from the current schema."
    ),
) -> None:
    """Print the JSON Schema of rule files (for yaml-language-server and editors)."""
    text = render_schema()
    if check_file is not None:
        current = check_file.read_text(encoding="utf-8") if check_file.exists() else ""
        if current != text:
            err.print(
                f"[red]{check_file} is out of date: run tact rules schema --write "
                f"{check_file}[/red]"
            )
            raise typer.Exit(1)
        out.print(f"{check_file} is current")
        return
    if write is not None:
        write.write_text(text, encoding="utf-8")
        out.print(f"wrote {write}")
        return
    print(text, end="")


@app.command()
def docs(
    write: Path | None = typer.Option(None, help=f"Write to a file (e.g. {DOCS_FILE})."),
) -> None:
    """Print the rules reference (sections, functions, follow-ups, retention) as Markdown."""
    from engine.pack.reference import render

    text = render()
    if write is not None:
        write.write_text(text, encoding="utf-8")
        out.print(f"wrote {write}")
        return
    print(text, end="")


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
