"""`tact demo`: the worker on the example rules, fed by synthetic traffic, until Ctrl-C.

Thin: it starts `tact run` and the load-test generator as child processes (services must
be up: `make demo` runs `tact services up` first), shows the worker's readiness checks as
they pass, and prints where to watch: the live dashboard first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from engine.config import TactSettings

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _get_json(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = json.loads(r.read() or b"{}")
            return body if isinstance(body, dict) else {}
    except urllib.error.HTTPError as exc:  # /readyz answers 503 with its checks
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    except (OSError, ValueError):
        return None


def _start_worker(worker: subprocess.Popen[bytes], base: str, timeout: float) -> bool:
    """Wait for /readyz, showing each readiness check as it turns green."""
    steps = {"web": "web server", "kafka": "Kafka reachable", "redis": "Redis reachable",
             "rules": "rule pack loaded", "consumer": "consuming"}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=out,
                  transient=False) as progress:
        task = progress.add_task("starting the worker", total=len(steps))
        end = time.monotonic() + timeout
        while time.monotonic() < end and worker.poll() is None:
            body = _get_json(base + "/readyz")
            done = ["web"] if body is not None else []
            if body:
                checks = body.get("checks", {})
                done += [k for k in steps if k != "web" and checks.get(k)]
            progress.update(task, completed=len(done), description="starting the worker: " + (
                ", ".join(steps[k] for k in done) or "waiting for the web server"))
            if body and body.get("ready"):
                return True
            time.sleep(0.3)
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
        if not _start_worker(worker, base, 90):
            out.print("[red]the worker did not become ready; see its log above[/red]")
            raise typer.Exit(1)
        seconds = duration or 24 * 3600
        gen = subprocess.Popen(
            [sys.executable, "-m", "load_tests.generator", "--kafka", "--live-time",
             "--events", str(int(rate * seconds)), "--customers", str(customers),
             "--rate", str(rate), "--invalid-ratio", "0.005"], env=env, cwd=repo)
        out.print(f"[green]Tact is running[/green] on {rules} with {rate:g} events/s.")
        out.print(f"  dashboard:      [bold]{base}/dashboard[/bold]")
        out.print(f"  metrics:        {base}/metrics (Prometheus)")
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
