"""`tact demo`: the worker on the example rules, fed by synthetic traffic, until Ctrl-C.

Thin: it starts `tact run` and the load-test generator as child processes (services must
be up: `make demo` runs `tact services up` first) and prints where to watch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import typer
from rich.console import Console

from engine.config import TactSettings

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _ready(url: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def demo(
    rules: Path = typer.Option(Path("rules"), help="Rule pack."),
    rate: float = typer.Option(200.0, help="Synthetic events per second."),
    customers: int = typer.Option(5000, help="Customers to draw from."),
    duration: int = typer.Option(0, help="Seconds to run (0: until Ctrl-C)."),
) -> None:
    """Run the worker on the example rules with synthetic traffic; print where to watch."""
    s = TactSettings()
    env = {**os.environ, "TACT_RULES_PATH": str(rules)}
    repo = Path.cwd()
    worker = subprocess.Popen([sys.executable, "-m", "engine.worker", "--rules", str(rules)],
                              env=env, cwd=repo)
    base = f"http://{s.web_host}:{s.web_port}"
    gen: subprocess.Popen[bytes] | None = None
    try:
        with out.status("starting the worker…"):
            if not _ready(base + "/readyz", 90):
                out.print("[red]the worker did not become ready; see its log above[/red]")
                raise typer.Exit(1)
        seconds = duration or 24 * 3600
        gen = subprocess.Popen(
            [sys.executable, "-m", "load_tests.generator", "--kafka", "--live-time",
             "--events", str(int(rate * seconds)), "--customers", str(customers),
             "--rate", str(rate), "--invalid-ratio", "0.005"], env=env, cwd=repo)
        out.print(f"[green]Tact is running[/green] on {rules} with {rate:g} events/s.")
        out.print(f"  worker stats:   {base}/stats")
        out.print(f"  health:         {base}/readyz")
        out.print(f"  decisions:      Kafka topic {s.decisions_topic} on {s.kafka_brokers}")
        out.print("Ctrl-C to stop.")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and worker.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in (gen, worker):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
