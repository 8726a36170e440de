"""The `tact` command line: a thin layer that parses, configures and delegates."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tact",
    help="Tact: real-time, context-aware engagement engine.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register() -> None:
    # Sub-command modules register themselves on import; keep imports lazy-ish and local.
    from engine.cli import services as _services

    app.add_typer(_services.app, name="services")


def main() -> None:
    _register()
    app()
