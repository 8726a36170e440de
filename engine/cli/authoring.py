"""`tact explain | simulate | replay`: see why, try out, and compare rule packs offline."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.cli.rules import load_or_exit
from engine.errors import ScenarioError

if TYPE_CHECKING:
    from engine.scenarios.seeds import StartingState
    from engine.simulate import Change

MAX_FAULT_LINES = 20  # faults listed one by one; the table counts them all
STATE_HELP = (
    "Customers' starting states (YAML or JSON): customer id -> attributes, consent, "
    "counters, timestamps, windows, contexts, history, as in a scenario's customers:."
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(explain)
    app.command()(simulate)
    app.command()(replay)


def pack_of_scenario(scenario: Path) -> Path:
    """The pack a scenario belongs to by the `PACK/scenarios/` convention, else `rules/`."""
    folder = scenario.resolve().parent
    if folder.name == "scenarios" and any(folder.parent.glob("*.yaml")):
        return folder.parent
    return Path("rules")


def explain(
    scenario: Path = typer.Argument(..., help="A scenario file."),
    rules: list[Path] = typer.Option(
        None, "--rules",
        help="Rule pack (default: the pack a PACK/scenarios/ file belongs to, else rules/)."),
    step: str | None = typer.Option(None, "--step", help="Only this step id."),
) -> None:
    """For each step: rules considered, each condition's value, policies applied, and why."""
    from engine.scenarios import load_scenario, run_scenario

    pack = load_or_exit(rules or [pack_of_scenario(scenario)])
    try:
        sc = load_scenario(scenario)
        result = asyncio.run(run_scenario(pack, sc, trace=True))
    except ScenarioError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None
    out.print(f"[bold]{sc.scenario}[/bold] with {pack.name}@{pack.version}")
    if sc.story:
        out.print(f"[dim]{sc.story}[/dim]")
    found = False
    for run in result.steps:
        if step and run.step != step:
            continue
        found = True
        src = next(s for s in sc.steps if s.id == run.step)
        what = (
            f"{src.event.get('type')} ({run.event_id}) for {src.event.get('customer')}"
            if src.event
            else "clock only"
        )
        out.print(f"\n[bold cyan]{run.step}[/bold cyan] at {run.at}: {what}")
        for line in run.explain or ["(nothing to evaluate)"]:
            out.print(f"  {line}", markup=False)
        for d in run.decisions:
            why = f" because {', '.join(d.reasons)}" if d.reasons else ""
            later = f", deliver after {d.deliver_after.isoformat()}" if d.deliver_after else ""
            colour = "green" if d.outcome == "sent" else "yellow"
            out.print(
                f"  => [{colour}]{d.outcome}[/{colour}] {d.message} via {d.channel}"
                f"{why}{later} params={d.params}",
                markup=True,
            )
        if run.faults:  # listed among the lines above as "fault in ..."
            labels = ", ".join(sorted({f.rule for f in run.faults}))
            out.print(f"  [red]{len(run.faults)} fault(s) in {labels}[/red]: failed closed, "
                      "no message from them")
        if run.problems:
            for p in run.problems:
                out.print(f"  [red]expectation not met:[/red] {p}")
        elif run.step in sc.expect:
            out.print("  [green]meets expectations[/green]")
    if step and not found:
        err.print(f"[red]no step {step!r} in {scenario}[/red]")
        raise typer.Exit(1)


def simulate(
    events: Path = typer.Option(..., "--events", help="JSON lines of events."),
    rules: list[Path] = typer.Option(None, "--rules", help="Rule pack (default: rules/)."),
    until: str | None = typer.Option(None, help="Advance the clock to this ISO time at the end."),
    trace: bool = typer.Option(False, help="Fill each decision's trace."),
    state: Path | None = typer.Option(None, "--state", help=STATE_HELP),
) -> None:
    """Run events through a pack: decisions as JSON lines on stdout, a summary on stderr."""
    from engine.simulate import read_events, simulate_async

    pack = load_or_exit(rules or [Path("rules")])
    end = _iso(until) if until else None
    seeds = _state_or_exit(state)
    with _fail_on_bad_state():
        sim = asyncio.run(simulate_async(pack, read_events(events), until=end, trace=trace,
                                         state=seeds))
    write = sys.stdout.buffer.write
    for d in sim.decisions:
        write(d.to_json() + b"\n")
    sys.stdout.flush()
    for dl in sim.dead_letters:
        err.print(f"{events}:{dl.line}: dead letter: {dl.reason}", markup=False)
    s = sim.summary()
    for f in sim.faults[:MAX_FAULT_LINES]:
        err.print(f"fault in {f.rule} on event {f.event_id}: {f.error}", markup=False)
    if len(sim.faults) > MAX_FAULT_LINES:
        err.print(f"... and {len(sim.faults) - MAX_FAULT_LINES} more faults", markup=False)
    table = Table(
        title=f"{sim.events} events, {len(sim.decisions)} decisions, "
        f"{len(sim.dead_letters)} dead letters, {sim.duplicates} duplicates, "
        f"{len(sim.faults)} faults"
    )
    table.add_column("rule")
    table.add_column("sent", justify="right")
    table.add_column("suppressed", justify="right")
    rules_seen = sorted({k.rsplit(":", 1)[0] for k in s["rules"]})
    for r in rules_seen:
        table.add_row(r, str(s["rules"][f"{r}:sent"]), str(s["rules"][f"{r}:suppressed"]))
    err.print(table)
    if s["reasons"]:
        reasons = Table(title="suppression reasons")
        reasons.add_column("reason")
        reasons.add_column("count", justify="right")
        for reason, n in s["reasons"].most_common():
            reasons.add_row(reason, str(n))
        err.print(reasons)
    if s["faults"]:
        faults = Table(title="faults (each failed closed: no message)")
        faults.add_column("rule")
        faults.add_column("count", justify="right")
        for label, n in s["faults"].most_common():
            faults.add_row(label, str(n))
        err.print(faults)


def replay(
    events: Path = typer.Option(..., "--events", help="JSON lines of events."),
    rules: list[Path] = typer.Option(..., "--rules", help="The current pack."),
    compare: list[Path] = typer.Option(..., "--compare", help="The other pack version."),
    limit: int = typer.Option(50, help="At most this many per-decision differences shown."),
    fail_on_diff: bool = typer.Option(
        False, "--fail-on-diff", help="Exit 1 if any decision changed, appeared or went (CI)."
    ),
    fmt: str = typer.Option(
        "text", "--format", help="text, or json: every difference as one JSON document."
    ),
    state: Path | None = typer.Option(None, "--state", help=STATE_HELP),
) -> None:
    """Run two pack versions over the same events and show what would change."""
    from engine.simulate import diff_decisions, read_events, replay_report, simulate_async

    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, not {fmt!r}")
    a = load_or_exit(rules)
    b = load_or_exit(compare)
    seeds = _state_or_exit(state)
    total = sum(1 for line in events.open("rb") if line.strip())
    with _fail_on_bad_state(), Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        ta = progress.add_task(f"{a.name}@{a.version}", total=total)
        sa = asyncio.run(
            simulate_async(a, read_events(events), state=seeds,
                           progress=lambda n: progress.advance(ta, n))
        )
        tb = progress.add_task(f"{b.name}@{b.version}", total=total)
        sb = asyncio.run(
            simulate_async(b, read_events(events), state=seeds,
                           progress=lambda n: progress.advance(tb, n))
        )
    changes = diff_decisions(sa.decisions, sb.decisions)
    if fmt == "json":
        sys.stdout.buffer.write(
            orjson.dumps(replay_report(a, b, (sa, sb), changes), option=orjson.OPT_INDENT_2)
            + b"\n"
        )
        sys.stdout.flush()
    else:
        sides = ((a.version, len(sa.decisions)), (b.version, len(sb.decisions)))
        _print_changes(changes, limit, *sides)
    if fail_on_diff and changes:
        err.print(f"[red]{len(changes)} decision(s) differ[/red]")
        raise typer.Exit(1)


def _print_changes(
    changes: list[Change], limit: int, before: tuple[str, int], after: tuple[str, int]
) -> None:
    for c in changes[:limit]:
        d = c.before or c.after
        if d is None:
            continue
        head = f"{c.kind:8} {d.event_id} {d.customer} {d.rule} {d.message}/{d.channel}"
        if c.kind == "changed":
            head += ": " + "; ".join(c.what)
        elif c.after is not None:
            head += f": {c.after.outcome} {','.join(c.after.reasons)}"
        else:
            head += f": was {d.outcome} {','.join(d.reasons)}"
        out.print(head, markup=False)
    if len(changes) > limit:
        out.print(f"... and {len(changes) - limit} more", markup=False)
    per_rule: Counter[str] = Counter()
    per_reason: Counter[str] = Counter()
    for c in changes:
        d = c.after or c.before
        if d is None:
            continue
        per_rule[f"{d.rule}\t{c.kind}"] += 1
        for r in set(c.before.reasons if c.before else []) ^ set(
            c.after.reasons if c.after else []
        ):
            per_reason[r] += 1
    table = Table(
        title=f"{len(changes)} differences: {before[1]} decisions "
        f"({before[0]}) vs {after[1]} ({after[0]})"
    )
    for col in ("rule", "kind", "count"):
        table.add_column(col)
    for key, n in sorted(per_rule.items()):
        rule, kind = key.split("\t")
        table.add_row(rule, kind, str(n))
    out.print(table)
    if per_reason:
        rt = Table(title="reasons gained or lost")
        rt.add_column("reason")
        rt.add_column("decisions", justify="right")
        for r, n in per_reason.most_common():
            rt.add_row(r, str(n))
        out.print(rt)


def _state_or_exit(path: Path | None) -> StartingState | None:
    if path is None:
        return None
    from engine.scenarios import load_state_file

    try:
        return load_state_file(path)
    except ScenarioError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


@contextmanager
def _fail_on_bad_state() -> Iterator[None]:
    """A starting state the pack cannot take (e.g. a context it does not define): exit 1."""
    try:
        yield
    except ScenarioError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


def _iso(text: str) -> float:
    from datetime import datetime

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO 8601 time: {text}") from None
    if when.tzinfo is None:
        raise typer.BadParameter("give the time with an offset, e.g. +02:00")
    return when.timestamp()


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()
