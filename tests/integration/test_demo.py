"""`tact demo` against the real Kafka and Redis: a bounded run, and a stop by Ctrl-C.

The demo runs on the test's own topics, consumer group, Redis prefix and web port (the
environment it passes on to its children), so it shares nothing with a running demo.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.services import manager
from tests.integration.kafka_utils import REPO, WorkerNames, delete_prefix
from tests.integration.worker_proc import free_port

TACT = [sys.executable, "-c", "from engine.cli import main; main()"]
FAUST_LOG = "[INFO]"  # how a Faust/aiokafka log line looks: "[time] [pid] [INFO] [^Worker]: ..."


@pytest.fixture
def names(services: manager.Connection) -> Iterator[WorkerNames]:
    n = WorkerNames.new("demo", services.bootstrap_servers, services.redis_url)
    yield n
    asyncio.run(delete_prefix(n.redis_url, n.prefix))


def _demo(names: WorkerNames, port: int, tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    env = names.env(TACT_WEB_PORT=str(port), COLUMNS="120")
    return subprocess.Popen(
        [*TACT, "demo", "--rate", "80", "--customers", "300",
         "--log-dir", str(tmp / "logs"), *args],
        env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_bounded_demo_run(names: WorkerNames, tmp_path: Path) -> None:
    port = free_port()
    demo = _demo(names, port, tmp_path, "--duration", "35", "--summary",
                 str(tmp_path / "summary.json"))
    stdout, stderr = demo.communicate(timeout=240)
    console = stdout.decode()
    assert demo.returncode == 0, (console, stderr.decode()[-3000:])
    summary = json.loads((tmp_path / "summary.json").read_text())
    # decisions were made, many of them sent; silence has reasons other than no consent
    assert summary["sent"] > 0 and summary["decisions"] > summary["sent"]
    assert summary["top_reason"] not in (None, "no_consent"), summary["top_reasons"]
    # the answers to the decisions came back through the events topic and were ingested
    outcomes = summary["outcomes_in"]
    assert outcomes.get("message_delivered", 0) > 0 and outcomes.get("message_opened", 0) > 0
    assert summary["feed_goals"] > 0
    # ... and counted in the report (Redis aggregates after each committed batch)
    report = subprocess.run(
        [*TACT, "report", "--format", "json"],
        env=names.env(), cwd=str(REPO), capture_output=True, timeout=60, check=True)
    rows = json.loads(report.stdout)["rows"]
    assert sum(int(r.get("delivered", 0)) for r in rows) > 0, rows
    # the console is the summary; the worker's logs went to the file it names
    assert "Tact demo (Ctrl-C to stop)" in console and "top suppression reasons" in console
    assert f"http://127.0.0.1:{port}/dashboard#token=" in console
    assert FAUST_LOG not in console and "[^Worker]" not in console
    worker_log = (tmp_path / "logs" / "worker.log").read_text()
    assert FAUST_LOG in worker_log and "worker.log" in console
    assert not _listening(port)  # the worker stopped with the demo


def test_ctrl_c_stops_the_demo_and_its_worker(names: WorkerNames, tmp_path: Path) -> None:
    port = free_port()
    demo = _demo(names, port, tmp_path, "--summary", str(tmp_path / "summary.json"))
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "logs" / "feed-status.json").exists():  # running, fed
            assert demo.poll() is None, demo.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline, "the demo did not start feeding"
            time.sleep(0.5)
        os.kill(demo.pid, signal.SIGINT)
        stdout, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0
    assert "Traceback" not in stdout.decode()
    assert json.loads((tmp_path / "summary.json").read_text())["events"] > 0
    assert not _listening(port)


def test_a_pack_that_does_not_load_stops_the_demo_and_names_the_log(
        names: WorkerNames, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{id: x}]\n")
    demo = _demo(names, free_port(), tmp_path, "--rules", str(bad), "--duration", "5")
    stdout, _ = demo.communicate(timeout=120)
    assert demo.returncode == 1
    log = tmp_path / "logs" / "worker.log"
    assert "the worker did not become ready" in stdout.decode()
    assert "missing required key 'send'" in log.read_text()  # the reason, in the log it names
