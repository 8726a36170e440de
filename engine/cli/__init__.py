"""The `tact` command line: a thin layer that parses, configures and delegates."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tact",
    help="Tact: real-time, context-aware engagement engine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _register() -> None:
    from engine.cli import (
        authoring,
        campaigns,
        connectors,
        customer,
        demo,
        report,
        rules,
        services,
        state,
        worker,
    )

    app.add_typer(rules.app, name="rules", help="Check, test and document rule packs.")
    app.add_typer(services.app, name="services", help="Local Kafka and Redis for dev and CI.")
    app.add_typer(state.app, name="state", help="Show, repair or reset a customer's state.")
    app.add_typer(campaigns.app, name="campaigns", help="Scheduled audience sends.")
    authoring.register(app)  # explain, simulate, replay
    worker.register(app)  # run
    connectors.register(app)  # publish, deliver
    demo.register(app)  # demo
    report.register(app)  # report
    customer.register(app)  # customer


@app.command()
def version() -> None:
    """Tact's version, and whether the decision core runs compiled (mypyc) or as Python."""
    from engine import __version__
    from engine.compiled import core_build

    typer.echo(f"tact {__version__} (core: {core_build().describe()})")


def main() -> None:
    _register()
    app()
