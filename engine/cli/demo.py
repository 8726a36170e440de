"""`tact demo`: the worker on the example rules, fed by the demo's customers, until Ctrl-C
or ``--duration`` seconds.

Thin: it starts `tact run` and ``load_tests.demo_feed`` (customer events, and the answers to
the worker's decisions: delivery reports, opens, clicks, bounces, conversions) as child
processes (services must be up: `make demo` runs `tact services up` first), shows the
worker's readiness checks as they pass, then a live summary refreshed in place. The
children's output (Faust's and aiokafka's INFO logs) goes to log files, not the terminal.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from engine.cli.demo_summary import DemoSummary, render, summarize
from engine.config import TactSettings

out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _get_json(url: str, token: str | None = None) -> dict[str, Any] | None:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as r:
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


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # not written yet
    return body if isinstance(body, dict) else None


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def demo(
    rules: Path = typer.Option(Path("rules"), help="Rule pack."),
    rate: float = typer.Option(200.0, help="Customer events per second.", min=0.1),
    customers: int = typer.Option(5000, help="Customers to draw from.", min=1),
    duration: int = typer.Option(0, help="Seconds to run (0: until Ctrl-C).", min=0),
    seed: int = typer.Option(7, help="Seed of the demo's customers and their answers."),
    log_dir: Path = typer.Option(Path(".tact/demo"), help="Where the worker's and the feed's "
                                 "logs go."),
    summary: Path | None = typer.Option(None, help="Write the final summary here (JSON)."),
) -> None:
    """Run the worker on the example rules with the demo's customers; a live summary."""
    s = TactSettings()
    # the dashboard's data is token-guarded when metrics are protected: a demo without a
    # configured token gets one of its own, shown in the dashboard URL
    token = s.api_token.get_secret_value() if s.api_token else secrets.token_hex(16)
    env = {**os.environ, "TACT_RULES_PATH": str(rules), "TACT_API_TOKEN": token}
    repo = Path.cwd()
    log_dir.mkdir(parents=True, exist_ok=True)
    worker_log, feed_log = log_dir / "worker.log", log_dir / "feed.log"
    status_path = log_dir / "feed-status.json"
    status_path.unlink(missing_ok=True)
    base = f"http://{s.web_host}:{s.web_port}"
    dashboard_url = f"{base}/dashboard#token={token}"
    logs = f"{worker_log} (worker), {feed_log} (traffic)"
    files: list[IO[bytes]] = [worker_log.open("ab"), feed_log.open("ab")]
    # own sessions: Ctrl-C reaches the demo alone, which stops the children in order
    worker = subprocess.Popen([sys.executable, "-m", "engine.worker", "--rules", str(rules)],
                              env=env, cwd=repo, stdout=files[0], stderr=subprocess.STDOUT,
                              start_new_session=True)
    feed: subprocess.Popen[bytes] | None = None
    t0 = time.monotonic()
    last = DemoSummary()

    def poll() -> DemoSummary:
        return summarize(time.monotonic() - t0, _get_json(base + "/api/dashboard", token),
                         _get_json(base + "/stats", token), _read_status(status_path),
                         _get_json(base + "/api/dashboard/uplift?period=today", token))

    try:
        out.print(f"Logs: {logs}")
        if not _start_worker(worker, base, 90):
            out.print(f"[red]the worker did not become ready; see {worker_log}[/red]")
            raise typer.Exit(1)
        feed = subprocess.Popen(
            [sys.executable, "-m", "load_tests.demo_feed", "--rate", str(rate),
             "--customers", str(customers), "--seed", str(seed), "--status", str(status_path)],
            env={k: v for k, v in env.items() if k != "TACT_API_TOKEN"}, cwd=repo,
            stdout=files[1], stderr=subprocess.STDOUT, start_new_session=True)
        out.print(f"[green]Tact is running[/green] on {rules}: {rate:g} events/s from "
                  f"{customers:,} customers. Metrics: {base}/metrics; decisions: Kafka "
                  f"topic {s.decisions_topic}.")
        t0 = time.monotonic()
        deadline = t0 + (duration or 10 * 365 * 86400)
        died: list[tuple[str, int | None, Path]] = []  # children that stopped on their own
        with Live(render(last, dashboard_url, logs), console=out, refresh_per_second=1) as live:
            try:
                while (time.monotonic() < deadline and worker.poll() is None
                       and feed.poll() is None):
                    time.sleep(1)
                    last = poll()
                    live.update(render(last, dashboard_url, logs))
                died = [(name, proc.returncode, log) for name, proc, log in (
                    ("worker", worker, worker_log), ("traffic feed", feed, feed_log))
                    if proc.poll() is not None]
                # the last answers in flight, then the final figures
                _stop(feed)
                time.sleep(3)
                last = poll()
                live.update(render(last, dashboard_url, logs))
            except KeyboardInterrupt:
                out.print("stopping…")
        for name, code, log in died:
            out.print(f"[red]the {name} stopped (exit {code}); see {log}[/red]")
        if died:
            raise typer.Exit(1)
    except KeyboardInterrupt:
        out.print("stopping…")
    finally:
        _stop(feed)
        _stop(worker)
        for f in files:
            f.close()
        if summary is not None:
            summary.write_text(json.dumps(last.to_json(), indent=2))
