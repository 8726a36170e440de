"""``python -m engine.worker``: the same as ``tact run`` (options: ``--help``)."""

from __future__ import annotations

import typer

from engine.cli.worker import run


def main() -> None:
    typer.run(run)


if __name__ == "__main__":
    main()
